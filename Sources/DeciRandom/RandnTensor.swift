// Matches diffusers' `randn_tensor` (diffusers/utils/torch_utils.py) for CPU generators.

/// Standard normal noise for a contiguous tensor of `shape`, drawn as diffusers' `randn_tensor`
/// does when given one generator: a single draw for the whole shape, so the result depends on the
/// whole shape, not only on each image's slice.
public func randnTensor<R: RandomSource>(shape: [Int], generator: inout R) -> [Float] {
    generator.normal(count: shape.reduce(1, *))
}

/// Standard normal noise as diffusers' `randn_tensor` draws it for a list of generators: item `i`
/// of the batch (the first dimension) comes from `generators[i]` with shape `[1] + shape[1...]`.
/// The list must have one generator per batch item (diffusers raises otherwise).
public func randnTensor<R: RandomSource>(shape: [Int], generators: inout [R]) -> [Float] {
    precondition(!shape.isEmpty && generators.count == shape[0],
                 "randnTensor: \(generators.count) generators for batch size \(shape.first ?? 0)")
    let perItem = shape.dropFirst().reduce(1, *)
    var out: [Float] = []
    out.reserveCapacity(perItem * generators.count)
    for i in generators.indices {
        out += generators[i].normal(count: perItem)
    }
    return out
}
