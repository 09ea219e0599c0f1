"""The built-in adapters. Each sub-package registers itself through the
``alsek`` entry point, exactly as a third-party backend does."""
