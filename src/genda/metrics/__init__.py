"""Metrics take tensors or folders and return numbers: fid.py (FID), face_score.py (MTCNN face
score), accuracy.py (digit accuracy with genda's LeNet). Import the module you need; nothing heavy
is loaded here."""
