// DeciTensor is the op layer: the only module that touches tensor memory or the kernels below it.
//
// Everything above it (models, pipeline, CLI, tests outside Tests/DeciTensorTests) works on
// `Tensor` values through `Ops`, the layers (`Conv2d`, `Linear`, `GroupNorm`, `LayerNorm`) and the
// staged layer builders; none reads `Tensor.pointer`, calls a `dd_` kernel or imports the C shim
// (OpBoundaryTests enforces it). So a second backend (a GPU) is a change to this module alone. It
// must provide:
//
// - storage: a `Tensor` of float32 values in the documented layout (NHWC images, `[n, t, c]`
//   sequences, last axis contiguous), created uninitialised, zeroed, from an array, or filled by a
//   closure (`init(shape:filling:)`), and read back with `toArray()` / `toNCHW()`;
// - the layers: convolution (including its fused nearest-2x upsampling input), linear (on tensors
//   and on column views of a fused projection), GroupNorm with optional per-(n, c) bias and fused
//   SiLU, LayerNorm, each built once from PyTorch-ordered weights (`staged` builders take them in
//   staging memory the op layer owns) and packed for the chosen `Precision`;
// - `Ops`: attention, element-wise arithmetic and activations, GEGLU, softmax, upsampling, channel
//   and batch concatenation, row and batch gathers, spatial crops, tile assembly and blending,
//   latent affine maps, the diagonal-Gaussian split and sample, and timestep features;
// - `Backend` settings, `OpProfile` timing around each op, and `StagingBuffer` for loading.
//
// Results must match the CPU backend within the parity tests' tolerances; the pure data movement
// ops and the element-wise formulas documented as exact must match bit for bit.
