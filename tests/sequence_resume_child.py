"""The child process of tests/test_sequence_resume.py: resume_harness's protocol (``training``,
``write`` and ``manifest`` markers, then one JSON line) for an RNN or InceptionTime on series or
a Transformer on text, chosen by the name of the folder above FOLDER (``rnn``,
``inception_time`` or ``transformer``)."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path


def main(folder: Path) -> None:
    import numpy as np
    import torch
    from test_sequences import spam_texts, wave_series

    import trainforge.training.checkpoint as checkpoint
    from trainforge.models.sequence import RNNClassifier, TransformerClassifier

    def marked(name, function):
        def wrapper(*args, **kwargs):
            print(name, flush=True)
            time.sleep(0.004)
            return function(*args, **kwargs)

        return wrapper

    torch.set_num_threads(1)
    checkpoint.fsync_tree = marked("write", checkpoint.fsync_tree)
    checkpoint.write_json = marked("manifest", checkpoint.write_json)
    settings = dict(
        batch_size=16,
        max_epochs=20,
        patience=2,
        checkpoint_every_steps=5,
        random_state=0,
    )
    if folder.parent.name == "inception_time":
        from trainforge.models.inception import InceptionTimeClassifier

        X, y = wave_series(96, seed=4)
        y[::4] = np.where(y[::4] == "fast", "slow", "fast")
        model = InceptionTimeClassifier(members=2, depth=3, filters=4, kernel=8, **settings)
    elif folder.parent.name == "rnn":
        X, y = wave_series(96, seed=4)
        y[::4] = np.where(y[::4] == "fast", "slow", "fast")  # label noise: it overfits, stops
        model = RNNClassifier(cell="lstm", pooling="last", dropout=0.2, **settings)
    else:
        X, y = spam_texts(120, seed=4)
        model = TransformerClassifier(d_model=32, heads=2, layers=1, ff_dim=64, **settings)
    print("training", flush=True)
    model.fit(X, y, checkpoint_dir=str(folder), resume=True)
    digest = hashlib.sha256()
    for key, value in sorted(model.model_.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    digest.update(np.ascontiguousarray(model.predict_proba(X)).tobytes())
    result = {
        "sha256": digest.hexdigest(),
        "history": model.history_,
        "best_epoch": model.best_epoch_,
        "epochs": model.n_epochs_,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]))
