// Layer builders over a weight scope: module code asks for its parameters by checkpoint key.
import DeciTensor
import DeciWeights

/// Builds layers from checkpoint tensors. Module code asks for its parameters by their key relative
/// to its scope (e.g. `conv1`, `attn1.to_q`), so module structure mirrors the checkpoint.
extension WeightScope {
    /// The float32 values of `key`, shape-checked.
    public func floats(_ key: String, shape: [Int]) throws(ModelError) -> [Float] {
        do { return try take(key, shape: shape).floats() } catch { throw .weights(error) }
    }

    /// The values of `key` as a tensor of its (checked) shape, converted straight into tensor memory.
    public func tensor(_ key: String, shape: [Int]) throws(ModelError) -> Tensor {
        do {
            let t = try take(key, shape: shape)
            return try Tensor(shape: shape) { (buffer) throws(WeightsError) in try t.convertFloats(into: buffer) }
        } catch { throw .weights(error) }
    }

    /// A conv layer from `name.weight` `[out, in, k, k]` and, if `bias`, `name.bias`.
    public func conv(_ name: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                     extraBottomRight: Int = 0, bias: Bool = true, precision: Precision) throws(ModelError) -> Conv2d {
        let w = try weightTensors([name], shape: [cout, cin, kernel, kernel])
        let b = bias ? try floats("\(name).bias", shape: [cout]) : nil
        return try built(name) { () throws(StagedLayerError<WeightsError>) in
            try Conv2d.staged(inChannels: cin, outChannels: cout, kernelSize: kernel, stride: stride, padding: padding ?? kernel / 2,
                              extraBottomRight: extraBottomRight, bias: b, precision: precision) { (buffer) throws(WeightsError) in
                try convert(w[0], into: buffer)
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
        return try built(names.joined(separator: "+")) { () throws(StagedLayerError<WeightsError>) in
            try Linear.staged(inFeatures: fin, outFeatures: fout * names.count, partRows: [Int](repeating: fout, count: names.count),
                              bias: bias ? b : nil, precision: precision) { (part, buffer) throws(WeightsError) in
                try convert(w[part], into: buffer)
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

    /// Runs a staged layer build (the weights are converted straight into the op layer's staging
    /// buffer, which the layer packs its own copy from) and names the layer in its errors.
    private func built<L>(_ what: String, _ build: () throws(StagedLayerError<WeightsError>) -> L) throws(ModelError) -> L {
        do { return try build() } catch {
            switch error {
            case .fill(let e): throw .weights(e)
            case .kernel(let e): throw .kernel("\(prefix)\(what): \(e)")
            }
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

/// Converts a checkpoint tensor to float32 into a staging buffer, then lets its file pages go.
private func convert(_ t: WeightTensor, into buffer: UnsafeMutableBufferPointer<Float>) throws(WeightsError) {
    try t.convertFloats(into: buffer)
    t.releaseResidentPages()
}
