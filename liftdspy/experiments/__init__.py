"""Experiments: one YAML config per optimizer run (`liftdspy run`), its runner and evaluation."""
