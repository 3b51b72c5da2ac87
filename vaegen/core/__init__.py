"""What every use of a model shares: config, errors, files and the disk cache, devices, tokenizer, data, token
cache, the model, objectives, metrics, labels and the checkpoint. Imports nothing else of vaegen."""
