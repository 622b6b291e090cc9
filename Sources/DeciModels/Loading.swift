import DeciTensor
import DeciWeights

/// A model failed to build: a bad config, a missing or mis-shaped tensor, or a kernel that could
/// not be set up. Messages name the file, key or parameter.
public enum ModelError: Error, CustomStringConvertible {
    case config(String)
    case weights(WeightsError)
    case kernel(String)

    public var description: String {
        switch self {
        case .config(let m): "config: \(m)"
        case .weights(let e): "\(e)"
        case .kernel(let m): "kernel setup: \(m)"
        }
    }
}

/// Builds layers from checkpoint tensors. Module code asks for its parameters by their key relative
/// to its scope (e.g. `conv1`, `attn1.to_q`), so module structure mirrors the checkpoint.
extension WeightScope {
    /// The float32 values of `key`, shape-checked.
    public func floats(_ key: String, shape: [Int]) throws(ModelError) -> [Float] {
        do { return try take(key, shape: shape).floats() } catch { throw .weights(error) }
    }

    /// A conv layer from `name.weight` `[out, in, k, k]` and, if `bias`, `name.bias`.
    public func conv(_ name: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                     extraBottomRight: Int = 0, bias: Bool = true, precision: Precision) throws(ModelError) -> Conv2d {
        let w = try weightTensors([name], shape: [cout, cin, kernel, kernel])
        let b = bias ? try floats("\(name).bias", shape: [cout]) : nil
        return try staged(w, what: name) { (weight) throws(KernelError) in
            try withOptionalPointer(b) { (bp) throws(KernelError) in
                try Conv2d(inChannels: cin, outChannels: cout, kernelSize: kernel, stride: stride, padding: padding ?? kernel / 2,
                           extraBottomRight: extraBottomRight, weight: weight, bias: bp, precision: precision)
            }
        }
    }

    /// A linear layer from `name.weight` `[out, in]` (a 1x1 conv weight `[out, in, 1, 1]` is accepted
    /// too, for `proj_in`/`proj_out` that some checkpoints store as convolutions).
    public func linear(_ name: String, in fin: Int, out fout: Int, bias: Bool = true, precision: Precision) throws(ModelError) -> Linear {
        try fusedLinear([name], in: fin, out: fout, bias: bias, precision: precision)
    }

    /// Several projections of the same input fused into one matmul (e.g. to_q/to_k/to_v): output
    /// columns are the parts in order.
    public func fusedLinear(_ names: [String], in fin: Int, out fout: Int, bias: Bool, precision: Precision) throws(ModelError) -> Linear {
        let w = try weightTensors(names, shape: [fout, fin], alternative: [fout, fin, 1, 1])
        var b: [Float] = []
        if bias { for n in names { b += try floats("\(n).bias", shape: [fout]) } }
        return try staged(w, what: names.joined(separator: "+")) { (weight) throws(KernelError) in
            try withOptionalPointer(bias ? b : nil) { (bp) throws(KernelError) in
                try Linear(inFeatures: fin, outFeatures: fout * names.count, weight: weight, bias: bp, precision: precision)
            }
        }
    }

    /// The (shape-checked) weight tensors `name.weight` for each name.
    private func weightTensors(_ names: [String], shape: [Int], alternative: [Int]? = nil) throws(ModelError) -> [WeightTensor] {
        var out: [WeightTensor] = []
        for n in names {
            let key = "\(n).weight"
            do {
                if let alternative, try tensor(key).shape == alternative { out.append(try take(key, shape: alternative)) }
                else { out.append(try take(key, shape: shape)) }
            } catch { throw .weights(error) }
        }
        return out
    }

    /// Converts `tensors` (concatenated) to float32 in the shared staging buffer and builds a layer
    /// from it; the layer packs its own copy, so the staging memory is reused by the next layer.
    private func staged<L>(_ tensors: [WeightTensor], what: String,
                           _ build: (UnsafePointer<Float>) throws(KernelError) -> L) throws(ModelError) -> L {
        let total = tensors.reduce(0) { $0 + $1.elementCount }
        return try StagingBuffer.withFloats(total) { (buffer) throws(ModelError) -> L in
            var offset = 0
            for t in tensors {
                do throws(WeightsError) { try t.convertFloats(into: buffer + offset) } catch { throw .weights(error) }
                t.releaseResidentPages()
                offset += t.elementCount
            }
            do { return try build(UnsafePointer(buffer)) } catch { throw .kernel("\(prefix)\(what): \(error)") }
        }
    }

    public func groupNorm(_ name: String, groups: Int, channels: Int, eps: Float) throws(ModelError) -> GroupNorm {
        guard groups > 0, channels % groups == 0 else {
            throw .config("\(prefix)\(name): \(channels) channels cannot form \(groups) groups")
        }
        return GroupNorm(groups: groups, channels: channels, eps: eps, weight: try floats("\(name).weight", shape: [channels]),
                         bias: try floats("\(name).bias", shape: [channels]))
    }

    public func layerNorm(_ name: String, channels: Int, eps: Float) throws(ModelError) -> LayerNorm {
        LayerNorm(channels: channels, eps: eps, weight: try floats("\(name).weight", shape: [channels]),
                  bias: try floats("\(name).bias", shape: [channels]))
    }
}

private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) throws(KernelError) -> R) throws(KernelError) -> R {
    guard let values else { return try body(nil) }
    return try values.withUnsafeBufferPointer { (p) throws(KernelError) -> R in try body(p.baseAddress) }
}
