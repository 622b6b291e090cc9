// Layer builders over a weight scope: module code asks for its parameters by checkpoint key.
import DeciTensor
import DeciWeights

/// Builds layers from checkpoint tensors. Module code asks for its parameters by their key relative
/// to its scope (e.g. `conv1`, `attn1.to_q`), so module structure mirrors the checkpoint.
///
/// Over a recording store (``WeightStore/recording(name:)``) each builder declares its tensors'
/// keys and shapes instead and returns a weightless placeholder layer, so building a model there
/// lists its checkpoint (a ``ParameterPlan``) without reading or allocating any weight.
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

    /// An embedding table from `name.weight` `[count, dim]`, converted straight into tensor memory.
    public func embedding(_ name: String, count: Int, dim: Int) throws(ModelError) -> Embedding {
        if isRecording {
            try declare([name], shape: [count, dim], bias: nil)
            return .placeholder(count: count, dim: dim)
        }
        return Embedding(table: try tensor("\(name).weight", shape: [count, dim]))
    }

    /// A conv layer from `name.weight` `[out, in, k, k]` and, if `bias`, `name.bias`.
    public func conv(_ name: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                     extraBottomRight: Int = 0, bias: Bool = true, precision: Precision) throws(ModelError) -> Conv2d {
        if isRecording {
            try declare([name], shape: [cout, cin, kernel, kernel], bias: bias ? [cout] : nil)
            return .placeholder(inChannels: cin, outChannels: cout, kernelSize: kernel, stride: stride, padding: padding ?? kernel / 2,
                                extraBottomRight: extraBottomRight, precision: precision)
        }
        let w = try weightTensors([name], shape: [cout, cin, kernel, kernel])
        let b = bias ? try floats("\(name).bias", shape: [cout]) : nil
        let layer = try built(name) { () throws(StagedLayerError<WeightsError>) in
            try Conv2d.staged(inChannels: cin, outChannels: cout, kernelSize: kernel, stride: stride, padding: padding ?? kernel / 2,
                              extraBottomRight: extraBottomRight, bias: b, precision: precision) { (buffer) throws(WeightsError) in
                try convert(w[0], into: buffer, adjustments: store.adjustments)
            }
        }
        store.adjustments?.built(w[0].name, layer: layer, values: 0..<w[0].elementCount)
        return layer
    }

    /// A linear layer from `name.weight` `[out, in]` (a 1x1 conv weight `[out, in, 1, 1]` is accepted
    /// too, for `proj_in`/`proj_out` that some checkpoints store as convolutions). `convShaped` says
    /// which of the two this model's checkpoints hold, for its parameter plan; loading takes either.
    public func linear(_ name: String, in fin: Int, out fout: Int, bias: Bool = true, convShaped: Bool = false,
                       precision: Precision) throws(ModelError) -> Linear {
        try fusedLinear([name], in: fin, out: fout, bias: bias, convShaped: convShaped, precision: precision)
    }

    /// Several projections of the same input fused into one matmul (e.g. to_q/to_k/to_v): output
    /// columns are the parts in order.
    public func fusedLinear(_ names: [String], in fin: Int, out fout: Int, bias: Bool, convShaped: Bool = false,
                            precision: Precision) throws(ModelError) -> Linear {
        if isRecording {
            try declare(names, shape: convShaped ? [fout, fin, 1, 1] : [fout, fin], bias: bias ? [fout] : nil)
            return .placeholder(inFeatures: fin, outFeatures: fout * names.count, precision: precision)
        }
        let w = try weightTensors(names, shape: [fout, fin], alternative: [fout, fin, 1, 1])
        var b: [Float] = []
        if bias { for n in names { b += try floats("\(n).bias", shape: [fout]) } }
        let layer = try built(names.joined(separator: "+")) { () throws(StagedLayerError<WeightsError>) in
            try Linear.staged(inFeatures: fin, outFeatures: fout * names.count, partRows: [Int](repeating: fout, count: names.count),
                              bias: bias ? b : nil, precision: precision) { (part, buffer) throws(WeightsError) in
                try convert(w[part], into: buffer, adjustments: store.adjustments)
            }
        }
        for (part, t) in w.enumerated() { store.adjustments?.built(t.name, layer: layer, values: (part * fout * fin)..<((part + 1) * fout * fin)) }
        return layer
    }

    /// Declares `name.weight` (and `name.bias` when `bias` has a shape) for each name to a recording
    /// store, each weight followed by its bias as torch's state dicts list them.
    private func declare(_ names: [String], shape: [Int], bias: [Int]?) throws(ModelError) {
        do {
            for n in names {
                try expect("\(n).weight", shape: shape)
                if let bias { try expect("\(n).bias", shape: bias) }
            }
        } catch { throw .weights(error) }
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
        if isRecording {
            try declare([name], shape: [channels], bias: [channels])
            return .placeholder(groups: groups, channels: channels, eps: eps)
        }
        return GroupNorm(groups: groups, channels: channels, eps: eps, weight: try floats("\(name).weight", shape: [channels]),
                         bias: try floats("\(name).bias", shape: [channels]))
    }

    public func layerNorm(_ name: String, channels: Int, eps: Float) throws(ModelError) -> LayerNorm {
        if isRecording {
            try declare([name], shape: [channels], bias: [channels])
            return .placeholder(channels: channels, eps: eps)
        }
        return LayerNorm(channels: channels, eps: eps, weight: try floats("\(name).weight", shape: [channels]),
                         bias: try floats("\(name).bias", shape: [channels]))
    }
}

/// Converts a checkpoint tensor to float32 into a staging buffer, then lets its file pages go;
/// merges the store's adjustments (LoRA deltas) for it in float32, before the layer packs it.
private func convert(_ t: WeightTensor, into buffer: UnsafeMutableBufferPointer<Float>,
                     adjustments: (any WeightAdjustments)?) throws(WeightsError) {
    try t.convertFloats(into: buffer)
    t.releaseResidentPages()
    try adjustments?.adjust(t.name, shape: t.shape, values: buffer)
}
