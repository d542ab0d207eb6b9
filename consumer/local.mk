# consumer: filled in by its module
