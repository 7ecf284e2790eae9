"""Reproduces the report: trains the runs of `experiments/manifest.yaml` (`runner`), then has
`genda.report` build the document from their run dirs. The only room that both trains and
reports; the report itself reads run dirs and never trains (it never imports this package)."""
