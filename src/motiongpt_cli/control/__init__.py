"""Control over what is generated: timelines of several texts (:mod:`.timeline`), editing by inpainting
(:mod:`.edit`), and the overlapping windows both use for motions longer than the model's maximum (:mod:`.windows`).

Everything here is sampler-level (:func:`~motiongpt_cli.diffusion.sampler.sample_windows` and
:class:`~motiongpt_cli.diffusion.sampler.Inpainting`), so it works with any model directory, imported ones
included. HumanML3D features are local to each frame (root velocities in the facing frame, joint positions
relative to the root), so windows blend in feature space with no alignment, and the heading and position of the
whole motion come out continuous when it is integrated.
"""
