# scripts: filled in by its module
