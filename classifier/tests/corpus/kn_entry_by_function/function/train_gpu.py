import torch

from .net import TinyNet

net = TinyNet().cuda()
opt = torch.optim.Adam(net.parameters())
for _ in range(100):
    loss = net(torch.rand(64, 8, device="cuda")).sum()
    loss.backward()
    opt.step()
