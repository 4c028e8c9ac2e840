"""The MindSpore input pipeline: mindspore.dataset over the shared sample source, and the float stage."""
