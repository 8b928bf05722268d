import torch
from torch import nn


class TextCNN(nn.Module):
    def __init__(self, vocab_size, classes, dim=128):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim)
        self.conv = nn.Conv1d(dim, 100, 3)
        self.fc = nn.Linear(100, classes)

    def forward(self, x):
        h = self.conv(self.emb(x).transpose(1, 2)).relu().max(dim=2).values
        return self.fc(h)
