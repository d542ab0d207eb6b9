# fcgi-app: filled in by its module
