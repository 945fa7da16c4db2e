"""The diffusion model: noise schedules and samplers, the dual-conditioned denoiser, losses."""
