"""Motion math: skeleton constants, rotations, HumanML3D features, BVH, .npz I/O and previews."""
