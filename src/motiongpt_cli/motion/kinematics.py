"""Forward kinematics on any joint tree (the standard convention: a joint's rotation turns its children's bones).

HumanML3D's own chain-wise FK, used by its features, is different and lives in :mod:`.features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def tree_forward_kinematics(
    local_rotations: np.ndarray, translations: np.ndarray, parents: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``(..., J, 3)`` and world rotations ``(..., J, 3, 3)``.

    ``local_rotations (..., J, 3, 3)``: each joint's rotation relative to its parent; ``translations (..., J, 3)``:
    each joint's offset from its parent in the parent's frame (the root's is its world position). Parents must come
    before their children.
    """
    world_r = np.empty_like(local_rotations)
    world_p = np.empty(translations.shape, dtype=np.float64)
    for j, parent in enumerate(parents):
        if parent < 0:
            world_r[..., j, :, :] = local_rotations[..., j, :, :]
            world_p[..., j, :] = translations[..., j, :]
        else:
            world_r[..., j, :, :] = world_r[..., parent, :, :] @ local_rotations[..., j, :, :]
            world_p[..., j, :] = world_p[..., parent, :] + np.einsum(
                "...ab,...b->...a", world_r[..., parent, :, :], translations[..., j, :]
            )
    return world_p, world_r
