"""DeepSphere: Chebyshev graph convolutions on HEALPix NESTED maps (Perraudin et al. 2019,
arXiv:1810.12186; Defferrard et al. 2020, arXiv:2012.15000; seed 002).

A filter of order K acts on a map f (npix values per channel) as h(L̃) f = Σ_{k=0..K} θ_k T_k(L̃) f,
with the Chebyshev recursion T_0 f = f, T_1 f = L̃ f, T_k f = 2 L̃ T_{k-1} f - T_{k-2} f
(Defferrard et al. 2016, arXiv:1606.09375, eq. 4) and L̃ the rescaled Laplacian of
crsky.models.healpix_graph. L̃ f is TensorFlow's CSR sparse × dense product
(``SparseMatrixMatMul``); its gradient is L̃ᵀ g = L̃ g because L̃ is symmetric. Pooling reduces the 4
NESTED children of each pixel at nside / 2, and the statistics layer (mean and variance over
pixels per channel) makes the output invariant under pixel permutations that preserve the graph,
e.g. the 90° rotations about the z axis.

The layers take their graph from ``nside`` only, so their configs are a few integers and a
saved ``model.keras`` reloads (registered under the package name ``crsky``).
"""

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from crsky.models.head import dense_head, regularizer
from crsky.models.healpix_graph import rescaled_laplacian
from crsky.models.layout import input_shape
from crsky.models.spec import ModelSpec

__all__ = [
    "ChebConv",
    "HealpixPool",
    "PixelStatistics",
    "build_deepsphere",
    "chebyshev_terms",
    "laplacian_matmul",
]

SPARSE_FORMATS = ("csr", "coo")


def laplacian_matmul(nside: int, sparse_format: str = "csr") -> Callable[[tf.Tensor], tf.Tensor]:
    """Return ``f ↦ L̃ f`` for dense f of shape (npix, n) float32 at ``nside``; ``sparse_format``
    'csr' (SparseMatrixMatMul, the default) or 'coo' (``tf.sparse.sparse_dense_matmul``)."""
    laplacian = rescaled_laplacian(nside).tocoo()
    indices = tf.constant(np.stack([laplacian.row, laplacian.col], axis=1), tf.int64)
    values = tf.constant(laplacian.data, tf.float32)
    shape = tf.constant(laplacian.shape, tf.int64)
    if sparse_format == "coo":
        matrix = tf.sparse.SparseTensor(indices, values, shape)
        return lambda f: tf.sparse.sparse_dense_matmul(matrix, f)
    if sparse_format != "csr":
        raise ValueError(f"sparse_format must be one of {SPARSE_FORMATS}, got {sparse_format!r}")
    matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=indices, values=values, dense_shape=shape
    )

    @tf.custom_gradient
    def matmul(f: tf.Tensor) -> tuple[tf.Tensor, Callable]:
        def grad(upstream: tf.Tensor) -> tf.Tensor:
            return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=upstream)  # L̃ᵀ = L̃

        return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=f), grad

    return matmul


def chebyshev_terms(
    f: tf.Tensor, order: int, matmul: Callable[[tf.Tensor], tf.Tensor]
) -> list[tf.Tensor]:
    """[T_0(L̃) f, …, T_order(L̃) f] by the Chebyshev recursion, ``matmul`` = f ↦ L̃ f."""
    terms = [f]
    if order >= 1:
        terms.append(matmul(f))
    for _ in range(2, order + 1):
        terms.append(2.0 * matmul(terms[-1]) - terms[-2])
    return terms


@keras.saving.register_keras_serializable(package="crsky")
class ChebConv(keras.layers.Layer):
    """Chebyshev graph convolution of order ``K`` on NESTED HEALPix maps at ``nside``.

    Input (batch, npix, c_in), output (batch, npix, filters): y = Σ_k T_k(L̃) x θ_k + b with
    θ_k of shape (c_in, filters). Order 0 is a per-pixel dense layer.
    """

    def __init__(
        self,
        nside: int,
        filters: int,
        K: int,
        use_bias: bool = True,
        kernel_initializer: str | dict = "glorot_uniform",
        kernel_regularizer: keras.regularizers.Regularizer | dict | None = None,
        sparse_format: str = "csr",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if sparse_format not in SPARSE_FORMATS:
            raise ValueError(
                f"sparse_format must be one of {SPARSE_FORMATS}, got {sparse_format!r}"
            )
        self.nside = int(nside)
        self.filters = int(filters)
        self.K = int(K)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.sparse_format = sparse_format

    def build(self, input_shape: tuple) -> None:
        npix = 12 * self.nside**2
        if input_shape[-2] != npix:
            raise ValueError(
                f"{self.name}: input has {input_shape[-2]} pixels, nside {self.nside} has {npix}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.K + 1, int(input_shape[-1]), self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )

    def call(self, x: tf.Tensor) -> tf.Tensor:
        npix, c_in = x.shape[1], x.shape[2]
        batch = tf.shape(x)[0]
        # (batch, npix, c_in) -> (npix, batch * c_in): one sparse product filters the whole
        # batch; each term T_k f is then (npix * batch, c_in) rows times θ_k, summed in that
        # layout, and only the sum is transposed back.
        f = tf.reshape(tf.transpose(x, [1, 0, 2]), [npix, -1])
        terms = chebyshev_terms(f, self.K, laplacian_matmul(self.nside, self.sparse_format))
        y = tf.add_n(
            [tf.matmul(tf.reshape(t, [-1, c_in]), self.kernel[k]) for k, t in enumerate(terms)]
        )
        y = tf.transpose(tf.reshape(y, [npix, batch, self.filters]), [1, 0, 2])
        return y + self.bias if self.use_bias else y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "nside": self.nside,
            "filters": self.filters,
            "K": self.K,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "sparse_format": self.sparse_format,
        }


@keras.saving.register_keras_serializable(package="crsky")
class HealpixPool(keras.layers.Layer):
    """Reduce each group of 4 NESTED children to their parent pixel at nside / 2 ('average' or
    'max'): (batch, npix, c) -> (batch, npix / 4, c)."""

    def __init__(self, mode: str = "average", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("average", "max"):
            raise ValueError(f"pooling mode must be 'average' or 'max', got {mode!r}")
        self.mode = mode

    def call(self, x: tf.Tensor) -> tf.Tensor:
        groups = keras.ops.reshape(x, (-1, x.shape[1] // 4, 4, x.shape[2]))
        reduce = keras.ops.mean if self.mode == "average" else keras.ops.max
        return reduce(groups, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[1] // 4, input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="crsky")
class PixelStatistics(keras.layers.Layer):
    """Mean and variance over pixels per channel: (batch, npix, c) -> (batch, 2 c), invariant
    under any permutation of the pixels."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        mean = keras.ops.mean(x, axis=1)
        variance = keras.ops.mean(keras.ops.square(x - mean[:, None, :]), axis=1)
        return keras.ops.concatenate([mean, variance], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 2 * input_shape[2])


def build_deepsphere(spec: ModelSpec, nside: int, sparse_format: str = "csr") -> keras.Model:
    """The ``deepsphere`` network of ``spec`` for NESTED maps at ``nside``: ``spec.depth`` blocks
    of (ChebConv, activation, HealpixPool), the statistics layer, then the dense head."""
    nside = spec.check_nside(nside)
    inputs = keras.Input(input_shape("deepsphere", nside, len(spec.inputs)), name="maps")
    x = inputs
    for i, channels in enumerate(spec.channels):
        x = ChebConv(
            nside >> i,
            channels,
            spec.K,
            kernel_regularizer=regularizer(spec),
            sparse_format=sparse_format,
            name=f"cheb{i}",
        )(x)
        x = keras.layers.Activation(spec.activation, name=f"cheb{i}_{spec.activation}")(x)
        x = HealpixPool(spec.pooling, name=f"pool{i}")(x)
    x = PixelStatistics(name="statistics")(x)
    return keras.Model(inputs, dense_head(x, spec), name=spec.name)
