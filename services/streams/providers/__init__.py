"""Video providers behind one interface: see `base.VideoProvider` and `registry.build_provider`."""
