import torch
from ts.torch_handler.base_handler import BaseHandler

from model import TextCNN


class TextCnnHandler(BaseHandler):
    def initialize(self, context):
        model_dir = context.system_properties.get("model_dir")
        self.model = TextCNN(vocab_size=30000, classes=4)
        self.model.load_state_dict(torch.load(model_dir + "/textcnn.pt"))
        self.model = self.model.cuda().eval()

    def preprocess(self, data):
        ids = [[int(t) for t in row.get("body").split()] for row in data]
        return torch.tensor(ids).cuda()

    def inference(self, x):
        with torch.no_grad():
            return self.model(x).argmax(1).tolist()
