// Eigen views of raw row-major arrays, shared by the kernels that hand matmuls to Eigen.
#pragma once

// Eigen's packet code inlines the AVX-512 intrinsics: they must be parsed first, inside the
// region of kernels/intrinsics.h. Eigen's own text gets the same treatment (its AVX-512 double
// transposes raise the same GCC 12 false positive on some targets).
#include "kernels/intrinsics.h"

SKEIN_BEGIN_INTRINSICS_USERS
#include <Eigen/Core>
SKEIN_END_INTRINSICS_USERS

namespace skein {

template <typename F>
using RowMat = Eigen::Matrix<F, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename F>
using RowMap = Eigen::Map<RowMat<F>>;
template <typename F>
using ConstRowMap = Eigen::Map<const RowMat<F>>;
// A row-major matrix whose rows are `stride` elements apart (e.g. one head inside qkv).
template <typename F>
using StridedMap = Eigen::Map<RowMat<F>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename F>
using ConstStridedMap = Eigen::Map<const RowMat<F>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename F>
using RowVecMap = Eigen::Map<Eigen::Matrix<F, 1, Eigen::Dynamic>>;
template <typename F>
using ConstRowVecMap = Eigen::Map<const Eigen::Matrix<F, 1, Eigen::Dynamic>>;

}  // namespace skein
