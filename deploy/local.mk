# deploy: filled in by its module
