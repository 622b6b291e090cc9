// A shape-only parameter plan: count parameters or list expected tensors without loading.

/// The tensors a model expects, by checkpoint key and PyTorch shape, computed from a config alone.
/// Counts parameters without loading anything, and lets tests check a model's naming against a
/// reference's state dict.
public struct ParameterPlan: Sendable {
    public private(set) var entries: [(key: String, shape: [Int])] = []

    public init() {}

    public var parameterCount: Int { entries.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// Keys mapped to shapes.
    public var shapes: [String: [Int]] { Dictionary(entries.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a }) }

    mutating func add(_ key: String, _ shape: [Int]) { entries.append((key, shape)) }

    mutating func conv(_ p: String, in cin: Int, out cout: Int, kernel: Int, bias: Bool = true) {
        add("\(p).weight", [cout, cin, kernel, kernel])
        if bias { add("\(p).bias", [cout]) }
    }

    mutating func linear(_ p: String, in fin: Int, out fout: Int, bias: Bool = true) {
        add("\(p).weight", [fout, fin])
        if bias { add("\(p).bias", [fout]) }
    }

    mutating func norm(_ p: String, channels: Int) {
        add("\(p).weight", [channels])
        add("\(p).bias", [channels])
    }

    /// diffusers `ResnetBlock2D` with a time-embedding projection.
    mutating func resnet(_ p: String, in cin: Int, out cout: Int, temb: Int) {
        norm("\(p).norm1", channels: cin)
        conv("\(p).conv1", in: cin, out: cout, kernel: 3)
        linear("\(p).time_emb_proj", in: temb, out: cout)
        norm("\(p).norm2", channels: cout)
        conv("\(p).conv2", in: cout, out: cout, kernel: 3)
        if cin != cout { conv("\(p).conv_shortcut", in: cin, out: cout, kernel: 1) }
    }

    /// diffusers `Transformer2DModel` with GEGLU transformer blocks; `linearProjection` says whether
    /// proj_in/proj_out are stored as linears or 1x1 convs.
    mutating func transformer(_ p: String, channels c: Int, context: Int, layers: Int, linearProjection: Bool) {
        norm("\(p).norm", channels: c)
        let proj = { (name: String, plan: inout ParameterPlan) in
            if linearProjection { plan.linear(name, in: c, out: c) } else { plan.conv(name, in: c, out: c, kernel: 1) }
        }
        proj("\(p).proj_in", &self)
        for i in 0..<layers {
            let b = "\(p).transformer_blocks.\(i)"
            for (n, kv) in [("attn1", c), ("attn2", context)] {
                linear("\(b).\(n).to_q", in: c, out: c, bias: false)
                linear("\(b).\(n).to_k", in: kv, out: c, bias: false)
                linear("\(b).\(n).to_v", in: kv, out: c, bias: false)
                linear("\(b).\(n).to_out.0", in: c, out: c)
            }
            norm("\(b).norm1", channels: c)
            norm("\(b).norm2", channels: c)
            norm("\(b).norm3", channels: c)
            linear("\(b).ff.net.0.proj", in: c, out: 8 * c)
            linear("\(b).ff.net.2", in: 4 * c, out: c)
        }
        proj("\(p).proj_out", &self)
    }

    /// conv_in, time embedding, conv_norm_out, conv_out: the parts every SD-family UNet shares.
    mutating func unetShell(inChannels: Int, outChannels: Int, base: Int, temb: Int, convInKernel: Int, convOutKernel: Int) {
        conv("conv_in", in: inChannels, out: base, kernel: convInKernel)
        linear("time_embedding.linear_1", in: base, out: temb)
        linear("time_embedding.linear_2", in: temb, out: temb)
        norm("conv_norm_out", channels: base)
        conv("conv_out", in: base, out: outChannels, kernel: convOutKernel)
    }
}
