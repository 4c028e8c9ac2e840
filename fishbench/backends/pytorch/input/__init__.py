"""The PyTorch input pipeline over the shared index, augmentation plan and decode engines.

DataLoader workers read samples (:mod:`.dataset`) and hand over uint8 crops (``cpu`` engine:
:mod:`.cpu_decode`) or JPEG bytes (``gpu`` engine) collated into shared-memory slots they reuse
(:mod:`.collate`, :mod:`.slots`). The main process moves each batch to the device, for the ``gpu``
engine decoding it there with nvjpeg, then cropping and resizing it with one batched kernel
(:mod:`.nvjpeg`, :mod:`.resize`), and runs the float stage once per batch (:mod:`.augment`,
:mod:`.augment_kernel`): :mod:`.device_batches`, on CUDA in threads working ahead
(:mod:`.prefetch`). :mod:`.loaders` builds a rank's train and val batches.
"""
