"""One tracked job: training, scoring on cells, its record, report and artifacts."""
