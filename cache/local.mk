# cache: filled in by its module
