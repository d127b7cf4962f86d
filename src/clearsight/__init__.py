"""clearsight: explain what an image classifier looks at, and measure how faithful the explanation is."""

from .errors import ClearsightError
from .explanation import Explanation
from .io import load_image
from .models import Classifier, TokenClassifier, load_model, wrap_model

__version__ = "0.1.0"

__all__ = ["ClearsightError", "Classifier", "Explanation", "TokenClassifier", "load_image", "load_model",
           "wrap_model", "__version__"]
