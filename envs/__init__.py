"""Gymnasium environments that build architectures step by step (``nas_ray.envs``)."""
