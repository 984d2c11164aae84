"""TruncatedSVD on factors computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. ``U`` and ``V``
stay in the factors' library and the small matrices go to the host, so every
update must give the NumPy path's answer (1e-10 in float64, 1e-4 in float32,
relative to σ₁; singular values and the products ``U diag(s) Vt``, since
singular vectors have sign freedom) and the dense SVD of the updated surrogate.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from linalg._core.namespace import array_kind
from linalg.svd import SVDResult, TruncatedSVD

from conftest import RTOL

pytestmark = pytest.mark.filterwarnings("error")

METHODS = ["zha_simon", "sparse", "krylov", "auto"]
K = 6


def orthonormal(rng, rows, cols):
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


def factors(rng, dtype=np.float64, m=90, n=70, k=K):
    """A rank-k surrogate with well separated singular values."""
    U, s, Vt = orthonormal(rng, m, k), np.geomspace(10.0, 2.0, k), orthonormal(rng, n, k).T
    return tuple(x.astype(dtype) for x in (U, s, Vt))


def with_zeros(X, rows):
    """``X`` with the given rows set to zero: ``"sparse"`` then touches the others only."""
    X = X.copy()
    X[rows] = 0.0
    return X


def best_rank_k(M, k=K):
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :k], s[:k], Vt[:k]


def surrogate(U, s, Vt):
    return (U * s) @ Vt


def host_factors(tsvd, to_numpy):
    return tuple(to_numpy(x) for x in (tsvd.U, tsvd.s, tsvd.Vt))


def assert_factors(tsvd, U_ref, s_ref, Vt_ref, to_numpy, dtype):
    """``tsvd`` holds ``U_ref diag(s_ref) Vt_ref`` to the dtype's tolerance, with
    orthonormal factors of ``dtype`` in the ``svd_flip`` signs."""
    U, s, Vt = host_factors(tsvd, to_numpy)
    tol = RTOL[np.dtype(dtype)] * float(s_ref[0])
    assert U.dtype == s.dtype == Vt.dtype == dtype
    assert U.shape == U_ref.shape and Vt.shape == Vt_ref.shape
    assert np.abs(s - s_ref).max() <= tol
    assert np.abs(surrogate(U, s, Vt) - surrogate(U_ref, s_ref, Vt_ref)).max() <= tol
    eye = np.eye(U.shape[1])
    assert np.abs(U.T @ U - eye).max() <= RTOL[np.dtype(dtype)]
    assert np.abs(Vt @ Vt.T - eye).max() <= RTOL[np.dtype(dtype)]
    assert tsvd.orthogonality_error() <= RTOL[np.dtype(dtype)]
    biggest = U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])]
    assert np.all(biggest > 0)  # the svd_flip signs


def assert_same(device, host, to_numpy, dtype):
    """The device object equals the NumPy one, given the same inputs."""
    assert device.shape == host.shape and device.dtype == host.dtype == dtype
    assert device.n_updates == host.n_updates
    assert_factors(device, host.U, host.s, host.Vt, to_numpy, dtype)


def pair(namespace, U, s, Vt, **options):
    """The same TruncatedSVD from NumPy factors and from device factors (returned too)."""
    to_array, _ = namespace
    host = TruncatedSVD(U, s, Vt, rng=0, **options)
    on_device = tuple(to_array(x) for x in (U, s, Vt))
    return host, TruncatedSVD(*on_device, rng=0, **options), on_device


def blocks(rng, m=90, n=70):
    """Float64 updates (cast to the object's dtype) with some zero rows in the
    vectors ``Z`` that meet the bases: ``Eᵀ`` for rows, ``F``, ``B`` and ``C``."""
    return {
        "E": with_zeros(rng.standard_normal((n, 7)), slice(0, 25)).T,
        "F": with_zeros(rng.standard_normal((m, 5)), slice(30, 60)),
        "B": with_zeros(rng.standard_normal((m, 3)), slice(0, 40)),
        "C": with_zeros(rng.standard_normal((n, 3)), slice(50, 70)),
    }


# Each operation on blocks of the object's array type, and the updated surrogate
# whose best rank-k approximation the object must then hold.
OPERATIONS = {
    "add_rows": (lambda t, b: t.add_rows(b["E"]), lambda M, b: np.vstack([M, b["E"]])),
    "add_columns": (lambda t, b: t.add_columns(b["F"]), lambda M, b: np.hstack([M, b["F"]])),
    "update": (lambda t, b: t.update(b["B"], b["C"]), lambda M, b: M + b["B"] @ b["C"].T),
    "remove_rows": (
        lambda t, b: t.remove_rows([0, 7, 89]),
        lambda M, b: np.delete(M, [0, 7, 89], 0),
    ),
    "decay": (lambda t, b: t.decay(0.5), lambda M, b: 0.5 * M),
    "reorthogonalize": (lambda t, b: t.reorthogonalize(), lambda M, b: M),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("method", METHODS)
def test_each_update_equals_numpy_path_and_dense_svd(namespace, dtype, method, operation, rng):
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng, dtype)
    b = blocks(rng)
    apply, updated = OPERATIONS[operation]
    # krylov_rank = 10 covers every block's rank: "krylov" is exact here
    host, device, factors_in = pair(namespace, U, s, Vt, method=method, krylov_rank=10)
    b_in = {name: to_array(block) for name, block in b.items()}
    inputs = [*factors_in, *b_in.values()]
    before = [to_numpy(x).copy() for x in inputs]
    assert apply(device, b_in) is device
    apply(host, b)
    assert type(device.U) is type(device.s) is type(device.Vt) is type(b_in["E"])
    assert_same(device, host, to_numpy, dtype)
    expected = best_rank_k(updated(surrogate(*(x.astype(np.float64) for x in (U, s, Vt))), b))
    assert_factors(device, *expected, to_numpy, dtype)
    for x, y in zip(inputs, before, strict=True):
        np.testing.assert_array_equal(to_numpy(x), y)


@pytest.mark.parametrize("reorth_tol", [None, 1e-300], ids=["default", "always"])
@pytest.mark.parametrize("method", METHODS)
def test_updates_in_sequence(namespace, dtype, method, reorth_tol, rng):
    """Appended rows grow the sparse method's row buffer, whose spare rows later
    updates must leave alone; ``reorth_tol=1e-300`` re-orthogonalizes after each
    sparse update. (The default tolerance is met by rounding-level drift in
    float32, so host and device may re-orthogonalize at different steps there.)"""
    to_array, to_numpy = namespace
    host, device, _ = pair(namespace, *factors(rng, dtype), method=method, reorth_tol=reorth_tol)
    M = surrogate(*(np.asarray(x, dtype=np.float64) for x in (host.U, host.s, host.Vt)))
    for step in range(3):
        b = blocks(rng, *M.shape)
        b["E"] = b["E"][: 2 + step]
        b["F"] = np.vstack([b["F"], np.zeros((2 + step, 5))])
        b["B"] = np.vstack([b["B"], np.ones((2 + step, 3))])
        b["C"] = np.vstack([b["C"], np.zeros((5, 3))])
        for tsvd, x in ((host, lambda a: a), (device, to_array)):
            tsvd.add_rows(x(b["E"])).add_columns(x(b["F"])).update(x(b["B"]), x(b["C"]))
            tsvd.remove_rows([1]).decay(0.9)
        M = surrogate(*best_rank_k(np.vstack([M, b["E"]])))
        M = surrogate(*best_rank_k(np.hstack([M, b["F"]])))
        M = 0.9 * np.delete(surrogate(*best_rank_k(M + b["B"] @ b["C"].T)), 1, 0)
        assert_same(device, host, to_numpy, dtype)
    assert device.n_updates == 15
    if reorth_tol or dtype == np.float64:
        assert device.n_reorth == host.n_reorth == (9 if reorth_tol and method == "sparse" else 0)
    assert_factors(device, *best_rank_k(M), to_numpy, dtype)  # krylov_rank = k: exact here


@pytest.mark.parametrize("grow", ["add_rows", "add_columns"])
def test_sparse_falls_back_to_the_explicit_factors(namespace, grow, rng):
    """Dominant new vectors make ``K`` ill-conditioned: the growing side is
    formed explicitly, and so is the rotated one (its ``Y1`` is nearly singular)."""
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng)
    M = surrogate(U, s, Vt)
    host, device, _ = pair(namespace, U, s, Vt, method="sparse")
    if grow == "add_rows":
        E = with_zeros(1e6 * rng.standard_normal((70, 3)), slice(20, 60)).T
        expected = np.vstack([M, E])
    else:
        E = with_zeros(1e6 * rng.standard_normal((90, 3)), slice(20, 60))
        expected = np.hstack([M, E])
    getattr(host, grow)(E)
    getattr(device, grow)(to_array(E))
    assert_same(device, host, to_numpy, np.float64)
    assert_factors(device, *best_rank_k(expected), to_numpy, np.float64)


@pytest.mark.parametrize("method", ["sparse", "zha_simon", "krylov"])
def test_updates_without_a_complement(namespace, method, rng):
    """A zero block, and ``B``, ``C`` inside the current bases: ``r = 0``."""
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng)
    B, C = U @ rng.standard_normal((K, 2)), Vt.T @ rng.standard_normal((K, 2))
    host, device, _ = pair(namespace, U, s, Vt, method=method)
    host.update(B, C).add_columns(np.zeros((90, 2)))
    device.update(to_array(B), to_array(C)).add_columns(to_array(np.zeros((90, 2))))
    assert_same(device, host, to_numpy, np.float64)
    expected = best_rank_k(np.hstack([surrogate(U, s, Vt) + B @ C.T, np.zeros((90, 2))]))
    assert_factors(device, *expected, to_numpy, np.float64)


@pytest.mark.parametrize("operation", ["add_rows", "add_columns", "update"])
def test_approximate_krylov_equals_numpy_path(namespace, dtype, operation, rng):
    """``"auto"`` takes ``"krylov"`` for dense updates of rank above ``4 k``; with
    ``q = 3`` directions it is an approximation, the same one on both paths (the
    same Gaussian starts)."""
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng, dtype, m=120, n=100, k=4)
    host, device, _ = pair(namespace, U, s, Vt, krylov_rank=3, krylov_iter=1)
    shapes = {"add_rows": [(30, 100)], "add_columns": [(120, 30)], "update": [(120, 30), (100, 30)]}
    update = [rng.standard_normal(shape) for shape in shapes[operation]]
    getattr(host, operation)(*update)
    getattr(device, operation)(*(to_array(x) for x in update))
    assert_same(device, host, to_numpy, dtype)


def test_from_matrix_on_device(namespace, dtype, rng):
    to_array, to_numpy = namespace
    A = (rng.standard_normal((80, 5)) @ rng.standard_normal((5, 60))).astype(dtype)  # rank 5
    x = to_array(A[:70])
    host = TruncatedSVD.from_matrix(A[:70], 5, method="sparse", rng=1, n_iter=2)
    device = TruncatedSVD.from_matrix(x, 5, method="sparse", rng=1, n_iter=2)
    assert type(device.U) is type(x)
    assert_same(device, host, to_numpy, dtype)
    host.add_rows(A[70:])
    device.add_rows(to_array(A[70:]))
    assert_same(device, host, to_numpy, dtype)
    assert_factors(device, *best_rank_k(A.astype(np.float64), 5), to_numpy, dtype)
    np.testing.assert_array_equal(to_numpy(x), A[:70])


def test_factors_results_and_operator(namespace, rng):
    _, to_numpy = namespace
    U, s, Vt = factors(rng)
    _, tsvd, (x, _, _) = pair(namespace, U, s, Vt)
    result = tsvd.to_result()
    assert isinstance(result, SVDResult) and result.info["n_updates"] == 0
    assert type(result.U) is type(result.s) is type(result.Vt) is type(x)
    assert_factors(tsvd, U, s, Vt, to_numpy, np.float64)
    assert tsvd.rank == K and "shape=(90, 70)" in repr(tsvd)
    first = tsvd.U  # a copy: writing into it leaves the object alone
    first[0, 0] = 100.0
    np.testing.assert_array_equal(to_numpy(tsvd.U), to_numpy(result.U))
    with pytest.raises(TypeError, match=r"SciPy LinearOperator.*use U, s and Vt"):
        tsvd.as_linear_operator()


def test_remove_rows_takes_host_and_device_indices(namespace, rng):
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng)
    mask = np.arange(90) % 3 == 0
    host_indices = [np.array([0, 5, -1]), [0, 5, 89], slice(10, 30), mask]
    device_indices = [to_array(np.array([0, 5, -1])), to_array(mask)]
    for idx, host_idx in [(i, i) for i in host_indices] + [
        (i, to_numpy(i)) for i in device_indices
    ]:
        host, device, _ = pair(namespace, U, s, Vt)
        host.remove_rows(host_idx)
        device.remove_rows(idx)
        assert_same(device, host, to_numpy, np.float64)


def test_numpy_and_device_data_do_not_mix(namespace, rng):
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng)
    host, device, _ = pair(namespace, U, s, Vt)
    library = array_kind(to_array(U)).library
    E, F = rng.standard_normal((3, 70)), rng.standard_normal((90, 2))
    B, C = rng.standard_normal((90, 2)), rng.standard_normal((70, 2))
    cases = [
        (lambda: TruncatedSVD(to_array(U), s, to_array(Vt)), "s holds numpy"),
        (lambda: TruncatedSVD(U, s, to_array(Vt)), "U holds numpy"),
        (lambda: TruncatedSVD(to_array(U), to_array(s), Vt.tolist()), "Vt holds python"),
        (lambda: device.add_rows(E), "E holds numpy"),
        (lambda: device.add_rows(sp.csr_array(E)), "E holds scipy.sparse"),
        (lambda: device.add_columns(F.tolist()), "E holds python"),
        (lambda: device.update(to_array(B), C), "C holds numpy"),
        (lambda: host.add_rows(to_array(E)), f"E holds {library}"),
        (lambda: host.update(B, to_array(C)), f"C holds {library}"),
        (lambda: host.remove_rows(to_array(np.array([0]))), f"idx holds {library}"),
    ]
    for call, match in cases:
        with pytest.raises(TypeError, match=match) as caught:
            call()
        assert "convert" in str(caught.value)
    for tsvd in (host, device):
        assert tsvd.n_updates == 0 and tsvd.shape == (90, 70)
        np.testing.assert_array_equal(to_numpy(tsvd.s) if tsvd is device else tsvd.s, s)


# A bad version of one factor: (name, what to do to it, error, message).
BAD_FACTORS = [
    ("s", lambda s: s[:-1], ValueError, "s must have shape"),
    ("Vt", lambda Vt: Vt[:-1], ValueError, "Vt must have 6 rows"),
    ("U", lambda U: U[:5], ValueError, "exceed min"),
    ("s", np.negative, ValueError, "s must be non-negative"),
    ("s", lambda s: s[::-1].copy(), ValueError, "s must be non-increasing"),
    ("U", lambda U: 2 * U, ValueError, "U must have orthonormal"),
    ("Vt", lambda Vt: 2 * Vt, ValueError, "Vt must have orthonormal"),
    ("U", lambda U: np.where(U > 0.3, np.nan, U), ValueError, "U contains NaN"),
    ("Vt", lambda Vt: Vt.astype(complex), TypeError, "Vt is complex"),
    ("U", lambda U: U[0], ValueError, "U must be 2-D"),
]


def test_bad_input_on_device_names_the_argument(namespace, rng):
    to_array, to_numpy = namespace
    U, s, Vt = factors(rng)
    x = to_array
    for name, spoil, error, match in BAD_FACTORS:
        args = {"U": U, "s": s, "Vt": Vt}
        args[name] = spoil(args[name])
        with pytest.raises(error, match=match):
            TruncatedSVD(**{key: x(value) for key, value in args.items()})
    tsvd = TruncatedSVD(x(U), x(s), x(Vt), method="sparse")
    update_cases = [
        (lambda: tsvd.add_rows(x(rng.standard_normal((3, 71)))), ValueError, "E must have 70 col"),
        (lambda: tsvd.add_rows(x(rng.standard_normal(70))), ValueError, "E must be 2-D"),
        (lambda: tsvd.add_rows(x(np.full((2, 70), np.nan))), ValueError, "E contains NaN"),
        (lambda: tsvd.add_rows(x(np.full((2, 70), np.inf))), ValueError, "E contains Inf"),
        (lambda: tsvd.add_rows(x(np.zeros((0, 70)))), ValueError, "E is empty"),
        (lambda: tsvd.add_columns(x(np.ones((89, 2)))), ValueError, "E must have 90 rows"),
        (lambda: tsvd.add_columns(x(np.ones((90, 2), complex))), TypeError, "E is complex"),
        (lambda: tsvd.update(x(np.ones((89, 2))), x(np.ones((70, 2)))), ValueError, "B must have"),
        (lambda: tsvd.update(x(np.ones((90, 2))), x(np.ones((71, 2)))), ValueError, "C must have"),
        (
            lambda: tsvd.update(x(np.ones((90, 2))), x(np.ones((70, 3)))),
            ValueError,
            "C must have as",
        ),
        (lambda: tsvd.remove_rows(x(np.array([90]))), ValueError, "idx must hold row indices"),
        (lambda: tsvd.remove_rows(x(np.ones(89, bool))), ValueError, "idx as a mask"),
        (lambda: tsvd.remove_rows(x(np.array([1.0]))), TypeError, "idx must be an integer"),
    ]
    for call, error, match in update_cases:
        with pytest.raises(error, match=match):
            call()
    assert tsvd.n_updates == 0 and tsvd.shape == (90, 70)
    np.testing.assert_array_equal(to_numpy(tsvd.s), s)
