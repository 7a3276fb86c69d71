"""Ray Tune searchers (``nas_ray.searchers``)."""
