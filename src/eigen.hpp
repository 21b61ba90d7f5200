// Internal: Eigen views over tensor storage, for kernels. Not installed.
#pragma once

#include <Eigen/Core>

namespace maas::detail {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapRM = Eigen::Map<MatrixRM, Eigen::Unaligned>;
using ConstMapRM = Eigen::Map<const MatrixRM, Eigen::Unaligned>;
using MapVec = Eigen::Map<Eigen::VectorXf, Eigen::Unaligned>;
using ConstMapVec = Eigen::Map<const Eigen::VectorXf, Eigen::Unaligned>;

}  // namespace maas::detail
