"""Metrics take tensors or folders and return numbers: fid.py (FID, and the Inception features KID
uses), kid.py (KID), face_score.py (face score with dlib HOG or MTCNN), accuracy.py (digit accuracy
with genda's LeNet). Import the module you need; nothing heavy is loaded here."""
