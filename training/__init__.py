"""Training StyleGAN and StyleGAN2 on the Keras port (docs/architecture.md).

Modules:
    training_options: the presets of run_training.py and their resolver.
    training_loop: the official loop (schedule, phases, snapshots, resume).
    loss, schedule, optimizers, augment, finetune, stats: its parts.
    dataset: the reader of official multi-resolution TFRecords.
    dataset_tool: the writer of those TFRecords (library of dataset_tool.py) and the demo set.
"""
