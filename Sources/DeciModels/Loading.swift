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
        let w = try floats("\(name).weight", shape: [cout, cin, kernel, kernel])
        let b = bias ? try floats("\(name).bias", shape: [cout]) : nil
        do {
            return try Conv2d(inChannels: cin, outChannels: cout, kernelSize: kernel, stride: stride, padding: padding ?? kernel / 2,
                              extraBottomRight: extraBottomRight, weight: w, bias: b, precision: precision)
        } catch { throw .kernel("\(prefix)\(name): \(error)") }
    }

    /// A linear layer from `name.weight` `[out, in]` (a 1x1 conv weight `[out, in, 1, 1]` is accepted
    /// too, for `proj_in`/`proj_out` that some checkpoints store as convolutions).
    public func linear(_ name: String, in fin: Int, out fout: Int, bias: Bool = true, precision: Precision) throws(ModelError) -> Linear {
        let w = try linearWeight(name, in: fin, out: fout)
        let b = bias ? try floats("\(name).bias", shape: [fout]) : nil
        do { return try Linear(inFeatures: fin, outFeatures: fout, weight: w, bias: b, precision: precision) } catch {
            throw .kernel("\(prefix)\(name): \(error)")
        }
    }

    /// Several projections of the same input fused into one matmul (e.g. to_q/to_k/to_v): output
    /// columns are the parts in order.
    public func fusedLinear(_ names: [String], in fin: Int, out fout: Int, bias: Bool, precision: Precision) throws(ModelError) -> Linear {
        var w: [Float] = []
        var b: [Float] = []
        w.reserveCapacity(names.count * fin * fout)
        for n in names {
            w += try linearWeight(n, in: fin, out: fout)
            if bias { b += try floats("\(n).bias", shape: [fout]) }
        }
        do {
            return try Linear(inFeatures: fin, outFeatures: fout * names.count, weight: w, bias: bias ? b : nil, precision: precision)
        } catch { throw .kernel("\(prefix)\(names.joined(separator: "+")): \(error)") }
    }

    private func linearWeight(_ name: String, in fin: Int, out fout: Int) throws(ModelError) -> [Float] {
        let key = "\(name).weight"
        do {
            let t = try tensor(key)
            if t.shape == [fout, fin, 1, 1] { return try t.floats() }
            return try take(key, shape: [fout, fin]).floats()
        } catch { throw .weights(error) }
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
