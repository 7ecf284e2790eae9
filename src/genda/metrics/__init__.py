"""Metrics take tensors or folders (plus a protocol built from the `metrics` config) and return
numbers; tasks only call them: fid.py (FID, and the Inception features KID uses), kid.py (KID),
face_score.py (face score with dlib HOG or MTCNN), images.py (ImageProtocol and ImageEvaluator:
FID, KID, diversity and face score of generated images against the data's val split), mse.py
(MSE against a ground-truth folder), accuracy.py (digit accuracy with genda's LeNet). Import the
module you need; nothing heavy is loaded here."""
