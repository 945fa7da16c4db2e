"""The standard T2M evaluator (Guo et al., CVPR 2022), so numbers compare with published HumanML3D tables.

Architecture, checkpoint layout, word features and batch encoding follow the released evaluator exactly (see
docs/evaluate.md): a movement convolution encoder over the 259 non-contact features, a BiGRU motion encoder on
``length // 4`` steps, and a BiGRU text encoder over GloVe word vectors plus part-of-speech one-hots. Weights come
from the official ``finest.tar`` (top-level ``text_encoder``, ``motion_encoder``, ``movement_encoder``); inputs are
normalised with the evaluator's own mean/std (``t2m_mean.npy``/``t2m_std.npy``), not the dataset's.

The vocabulary pickles are read with a restricted unpickler that only builds lists, dicts, strings and numbers.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..errors import MotionGPTError
from ..motion.skeleton import MAX_FRAMES

MAX_MOTION_LEN = MAX_FRAMES  # motions are zero-padded to this many frames
MAX_TEXT_LEN = 20  # tokens kept before sos/eos are added: sequences are 22 long
POS_CATEGORIES = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV", "Loc_VIP", "Body_VIP", "Obj_VIP",
                  "Act_VIP", "Desc_VIP", "OTHER")  # fmt: skip
VIP = {
    "Loc_VIP": "left right clockwise counterclockwise anticlockwise forward back backward up down straight curve",
    "Body_VIP": "arm chin foot feet face hand mouth leg waist eye knee shoulder thigh",
    "Obj_VIP": "stair dumbbell chair window floor car ball handrail baseball basketball",
    "Act_VIP": "walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit lift lower raise "
    "wash stand kneel stroll rub bend balance flap jog shuffle lean rotate spin spread climb",
    "Desc_VIP": "slowly carefully fast careful slow quickly happy angry sad happily angrily sadly",
}
VIP_OF = {word: cat for cat, words in VIP.items() for word in words.split()}


class MovementConvEncoder(nn.Module):
    def __init__(self, input_size: int = 259, hidden: int = 512, output: int = 512) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden, output, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True),
        )  # fmt: skip
        self.out_net = nn.Linear(output, output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 259) -> (B, T/4, 512)
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


class _BiGRUEncoder(nn.Module):
    def __init__(self, input_size: int, hidden: int, output: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden * 2, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, output),
        )  # fmt: skip
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden), requires_grad=True))

    def _encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.input_emb(inputs)
        hidden = self.hidden.repeat(1, inputs.shape[0], 1)
        packed = pack_padded_sequence(emb, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, hidden)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoderBiGRUCo(_BiGRUEncoder):
    def __init__(self, input_size: int = 512, hidden: int = 1024, output: int = 512) -> None:
        super().__init__(input_size, hidden, output)

    def forward(self, movements: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(movements, lengths)


class TextEncoderBiGRUCo(_BiGRUEncoder):
    def __init__(self, word_size: int = 300, pos_size: int = 15, hidden: int = 512, output: int = 512) -> None:
        super().__init__(word_size, hidden, output)
        self.pos_emb = nn.Linear(pos_size, word_size)

    def forward(self, words: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(words + self.pos_emb(pos), lengths)


# ------------------------------------------------------------------------------------------- vocabulary


class _SafeUnpickler(pickle.Unpickler):
    """Builds plain data only: any class or function reference in the file is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a vocabulary file")


def safe_load_pickle(path: Path):
    try:
        return _SafeUnpickler(io.BytesIO(Path(path).read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise MotionGPTError(f"{path}: not a plain-data pickle ({exc})") from None


@dataclass
class WordVectorizer:
    """GloVe vectors of the evaluator's vocabulary (``our_vab_*``) and the POS one-hots of ``word/POS`` tokens."""

    vectors: np.ndarray  # (V, 300)
    index: dict[str, int]

    @classmethod
    def load(cls, folder: Path, prefix: str = "our_vab") -> WordVectorizer:
        folder = Path(folder)
        missing = [n for n in (f"{prefix}_words.pkl", f"{prefix}_idx.pkl", f"{prefix}_data.npy")
                   if not (folder / n).is_file()]  # fmt: skip
        if missing:
            raise MotionGPTError(f"{folder}: missing the GloVe file(s) {', '.join(missing)}",
                                 hint="the glove folder of the T2M evaluator download has all three")  # fmt: skip
        words = safe_load_pickle(folder / f"{prefix}_words.pkl")
        index = safe_load_pickle(folder / f"{prefix}_idx.pkl")
        if not isinstance(words, list) or not isinstance(index, dict):
            raise MotionGPTError(f"{folder}: unexpected vocabulary layout")
        vectors = np.load(folder / f"{prefix}_data.npy", allow_pickle=False)
        if vectors.shape[0] != len(words):
            raise MotionGPTError(f"{folder}: {vectors.shape[0]} vectors for {len(words)} words")
        return cls(vectors.astype(np.float32), index)

    def token(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        word, _, pos = token.rpartition("/")
        onehot = np.zeros(len(POS_CATEGORIES), dtype=np.float32)
        if word in self.index:
            vector = self.vectors[self.index[word]]
            category = VIP_OF.get(word, pos if pos in POS_CATEGORIES else "OTHER")
        else:
            vector = self.vectors[self.index["unk"]]
            category = "OTHER"
        onehot[POS_CATEGORIES.index(category)] = 1.0
        return vector, onehot

    def sentence(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """``(22, 300)`` word vectors, ``(22, 15)`` POS one-hots and the length with sos/eos (the dataset's rule)."""
        if len(tokens) < MAX_TEXT_LEN:
            tokens = ["sos/OTHER", *tokens, "eos/OTHER"]
            length = len(tokens)
            tokens = tokens + ["unk/OTHER"] * (MAX_TEXT_LEN + 2 - length)
        else:
            tokens = ["sos/OTHER", *tokens[:MAX_TEXT_LEN], "eos/OTHER"]
            length = len(tokens)
        pairs = [self.token(t) for t in tokens]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), length


# ------------------------------------------------------------------------------------------- the evaluator


def pad_normalised(features: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw ``(T_i, 263)`` motions -> z-normalised, zero-padded ``(N, max(196, T), 263)`` and the lengths."""
    lengths = torch.tensor([len(f) for f in features])
    if len(features) and int(lengths.min()) < 4:
        raise MotionGPTError("evaluators need motions of at least 4 frames")
    T = max([MAX_MOTION_LEN, *[len(f) for f in features]])
    batch = np.zeros((len(features), T, 263), dtype=np.float32)
    for i, f in enumerate(features):
        batch[i, : len(f)] = (np.asarray(f, np.float32) - mean) / std
    return torch.from_numpy(batch), lengths



class T2MEvaluator:
    """``encode_text`` and ``encode_motion`` as the T2M evaluation code does (batch sorted by motion length)."""

    name = "t2m"

    def __init__(self, text_encoder, motion_encoder, movement_encoder, mean, std, words: WordVectorizer | None,
                 device: str = "cpu") -> None:  # fmt: skip
        self.text_encoder = text_encoder.to(device).eval()
        self.motion_encoder = motion_encoder.to(device).eval()
        self.movement_encoder = movement_encoder.to(device).eval()
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.words, self.device = words, device

    @torch.no_grad()
    def encode_motion(self, features: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Raw (not normalised) ``(T_i, 263)`` features -> ``(N, 512)``; lengths are used as given (multiples of 4).

        Motions are zero-padded (in normalised space) to 196 frames before the movement encoder, as the official
        loaders do: its convolutions see the padding at each motion's end, so this changes the embedding. Batches
        of 32 as the evaluation loaders (the result does not depend on the batching)."""
        out = []
        for start in range(0, len(features), batch_size):
            x, lengths = pad_normalised(features[start : start + batch_size], self.mean, self.std)
            movements = self.movement_encoder(x.to(self.device)[..., :-4])
            out.append(self.motion_encoder(movements, lengths // 4).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    @torch.no_grad()
    def encode_text(self, token_lists: list[list[str]], *, legacy_lengths: bool = False) -> np.ndarray:
        """``word/POS`` token lists -> ``(N, 512)``. ``legacy_lengths`` reproduces MDM's pre-2024 bug #182 (every
        caption treated as the padded 22 tokens long), which the seed paper's Table 1 numbers used."""
        if self.words is None:
            raise MotionGPTError("this evaluator has no GloVe vocabulary (our_vab_data.npy)")
        out = []
        for start in range(0, len(token_lists), 256):
            sentences = [self.words.sentence(tokens) for tokens in token_lists[start : start + 256]]
            words = torch.from_numpy(np.stack([s[0] for s in sentences])).to(self.device)
            pos = torch.from_numpy(np.stack([s[1] for s in sentences])).to(self.device)
            lengths = torch.tensor([MAX_TEXT_LEN + 2 if legacy_lengths else s[2] for s in sentences])
            out.append(self.text_encoder(words, pos, lengths).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    def encode_captions(self, texts: list[str], tokens: list[list[str] | None], *, legacy_lengths: bool = False
                        ) -> np.ndarray:  # fmt: skip
        """The evaluation runner's entry point: the captions' word/POS tokens (the texts themselves are not read)."""
        if any(t is None for t in tokens):
            raise MotionGPTError(
                "the T2M evaluator needs each caption's word/POS tokens, and captions of this dataset lack them",
                hint="re-run `motiongpt data prepare` (it keeps the tokens of HumanML3D's texts/*.txt)",
            )
        return self.encode_text(tokens, legacy_lengths=legacy_lengths)


def load_t2m_evaluator(checkpoint: Path, mean_std_dir: Path, glove_dir: Path | None = None, device: str = "cpu"
                       ) -> T2MEvaluator:  # fmt: skip
    """The official evaluator: ``finest.tar`` (loaded as tensors only), ``t2m_mean.npy``/``t2m_std.npy`` (or
    ``mean.npy``/``std.npy``), and optionally the GloVe ``our_vab_*`` files."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MotionGPTError(f"evaluator checkpoint not found: {checkpoint}") from None
    except Exception as exc:  # noqa: BLE001 (corrupt or non-tensor checkpoints)
        raise MotionGPTError(f"{checkpoint}: not a T2M evaluator checkpoint ({type(exc).__name__})") from None
    missing = [k for k in ("text_encoder", "motion_encoder", "movement_encoder") if k not in state]
    if missing:
        raise MotionGPTError(f"{checkpoint}: missing {', '.join(missing)} (expected the official finest.tar layout)")
    text, motion, movement = TextEncoderBiGRUCo(), MotionEncoderBiGRUCo(), MovementConvEncoder()
    for module, key in ((text, "text_encoder"), (motion, "motion_encoder"), (movement, "movement_encoder")):
        try:
            module.load_state_dict(state[key], strict=True)
        except RuntimeError as exc:
            raise MotionGPTError(f"{checkpoint}: {key} does not fit the T2M architecture: {exc}") from None
    mean_std_dir = Path(mean_std_dir)
    for prefix in ("t2m_", ""):
        if (mean_std_dir / f"{prefix}mean.npy").is_file():
            mean = np.load(mean_std_dir / f"{prefix}mean.npy", allow_pickle=False)
            std = np.load(mean_std_dir / f"{prefix}std.npy", allow_pickle=False)
            break
    else:
        raise MotionGPTError(f"{mean_std_dir}: no t2m_mean.npy/t2m_std.npy (the evaluator's normalisation)")
    if mean.shape != (263,) or std.shape != (263,):
        raise MotionGPTError(f"{mean_std_dir}: evaluator mean/std must be (263,), got {mean.shape}/{std.shape}")
    words = WordVectorizer.load(glove_dir) if glove_dir is not None else None
    return T2MEvaluator(text, motion, movement, mean, std, words, device)


# where the official downloads put the files: MDM (`t2m/text_mot_match/model/finest.tar`, `dataset/t2m_mean.npy`,
# `glove/`), text-to-motion (`checkpoints/t2m/Comp_v6_KLD01/meta/mean.npy`), or one flat folder
_CHECKPOINTS = ("finest.tar", "text_mot_match/model/finest.tar", "t2m/text_mot_match/model/finest.tar")
_MEAN_STD_DIRS = (".", "meta", "Comp_v6_KLD01/meta", "t2m/Comp_v6_KLD01/meta", "dataset")
_GLOVE_DIRS = ("glove", "../glove", ".")


def find_t2m_files(path: Path) -> tuple[Path, Path, Path | None] | None:
    """``(finest.tar, mean/std folder, GloVe folder or None)`` under ``path`` (a folder or the .tar itself), or
    None when ``path`` holds no T2M evaluator checkpoint."""
    path = Path(path)
    if path.is_file():
        checkpoint, root = path, path.parent
    else:
        found = [path / c for c in _CHECKPOINTS if (path / c).is_file()]
        if not found:
            return None
        checkpoint, root = found[0], path
    stats = None
    for base in (root, checkpoint.parent):
        for sub in _MEAN_STD_DIRS:
            folder = base / sub
            if (folder / "t2m_mean.npy").is_file() or (folder / "mean.npy").is_file():
                stats = folder
                break
        if stats is not None:
            break
    if stats is None:
        raise MotionGPTError(f"{path}: found {checkpoint.name} but not the evaluator's t2m_mean.npy/t2m_std.npy",
                             hint="put them beside finest.tar")  # fmt: skip
    glove = next((root / g for g in _GLOVE_DIRS if (root / g / "our_vab_words.pkl").is_file()), None)
    return checkpoint, stats, glove
