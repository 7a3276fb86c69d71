"""Neural models over architecture graphs (torch + PyG; no Ray)."""
