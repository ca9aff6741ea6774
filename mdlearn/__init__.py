"""mdlearn: monocular depth prediction, reproduced and taught (Eigen, Puhrsch & Fergus, NIPS 2014).

Every chapter of the mdlearn book imports this package; each public function says in its
docstring which chapter introduces it.
"""

__version__ = "0.1.0"
