"""One module per report section: each has TITLE, ITEM (the manifest item it shows) and
`render(b)`, which adds its blocks to the builder's document."""

from genda.report.sections import classifier, ddim, ddpm, gan, uda, vae

MODULES = (gan, vae, ddpm, ddim, uda, classifier)
