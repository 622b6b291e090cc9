// What the sampling loop needs from a UNet, plus helpers the UNets share: JSON config loading,
// a shape-only parameter plan (count parameters or list expected tensors without loading), and an
// opt-in per-module timer.
import DeciTensor
import DeciWeights
import Foundation

/// A conditional denoiser: given noisy latents, the timestep of each batch element and the text
/// states, predicts what the model was trained to predict (epsilon or v; the scheduler knows which).
///
/// Latents are NHWC `[n, h, w, inChannels]`; `h` and `w` must be multiples of ``latentSizeMultiple``
/// (check with ``checkLatentSize(height:width:)`` before sampling). The output is
/// `[n, h, w, outChannels]`.
public protocol Denoiser: AnyObject, Sendable {
    /// Latent channels the model reads (4, or 9 for SD inpainting).
    var inChannels: Int { get }
    /// Latent channels the model predicts.
    var outChannels: Int { get }
    /// Width of the text states the cross-attentions read (768 for CLIP ViT-L/14).
    var contextChannels: Int { get }
    /// Latent sides must be multiples of this: 2 to the number of downsamplers. It is a property of
    /// the UNet alone; the VAE multiplies it by its own factor for image sides.
    var latentSizeMultiple: Int { get }

    /// `latents` `[n, h, w, inChannels]`; `timesteps` one per batch element (or one for all);
    /// `context` `[n, tokens, contextChannels]`. Returns `[n, h, w, outChannels]`.
    func callAsFunction(_ latents: Tensor, timesteps: [Float], context: Tensor) -> Tensor
}

extension Denoiser {
    /// Throws a config error naming the latent size when the model cannot take it.
    public func checkLatentSize(height: Int, width: Int) throws(ModelError) {
        let m = latentSizeMultiple
        guard height > 0, width > 0, height % m == 0, width % m == 0 else {
            throw .config("latent size \(height)x\(width) is not a positive multiple of \(m) (the UNet downsamples by \(m))")
        }
    }

    /// Validates the inputs of a forward call; preconditions because a wrong shape here is a
    /// programming error of the caller (the pipeline checks sizes up front with `checkLatentSize`).
    func checkInputs(_ latents: Tensor, timesteps: [Float], context: Tensor) {
        precondition(latents.rank == 4 && latents.shape[3] == inChannels, "latents \(latents.shape): want [n, h, w, \(inChannels)]")
        let (n, h, w) = (latents.shape[0], latents.shape[1], latents.shape[2])
        precondition(h % latentSizeMultiple == 0 && w % latentSizeMultiple == 0,
                     "latent size \(h)x\(w) is not a multiple of \(latentSizeMultiple)")
        precondition(timesteps.count == n || timesteps.count == 1, "\(timesteps.count) timesteps for a batch of \(n)")
        precondition(context.rank == 3 && context.shape[0] == n && context.shape[2] == contextChannels,
                     "context \(context.shape): want [\(n), tokens, \(contextChannels)]")
    }
}

/// One timestep per batch element (a single value is repeated, as diffusers expands a scalar).
func perElement(_ timesteps: [Float], batch: Int) -> [Float] {
    timesteps.count == batch ? timesteps : [Float](repeating: timesteps[0], count: batch)
}

// MARK: - Config loading

/// Decodes a `config.json`, turning decoding failures into config errors that name the file and the
/// key path.
func decodeConfig<T: Decodable>(_ type: T.Type, from data: Data, source: String) throws(ModelError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as ModelError {
        throw .config("\(source): \(error.description.replacingOccurrences(of: "config: ", with: ""))")
    } catch let DecodingError.keyNotFound(key, ctx) {
        throw .config("\(source): missing key '\(path(ctx.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(_, ctx) {
        throw .config("\(source): '\(path(ctx.codingPath))': \(ctx.debugDescription)")
    } catch let DecodingError.valueNotFound(_, ctx) {
        throw .config("\(source): '\(path(ctx.codingPath))' is null")
    } catch let DecodingError.dataCorrupted(ctx) {
        throw .config("\(source): \(ctx.codingPath.isEmpty ? "" : "'\(path(ctx.codingPath))': ")\(ctx.debugDescription)")
    } catch {
        throw .config("\(source): \(error)")
    }
}

func readConfigFile(_ path: String) throws(ModelError) -> Data {
    do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw .config("cannot read \(path): \(error.localizedDescription)")
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
}

/// A config value given either as one value for every block or as one per block (diffusers'
/// `int | tuple[int]` fields such as `attention_head_dim` and `layers_per_block`).
public enum PerBlock<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case all(Value)
    case each([Value])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Value.self) { self = .all(v) } else { self = .each(try c.decode([Value].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all(let v): try c.encode(v)
        case .each(let vs): try c.encode(vs)
        }
    }

    /// One value per block; a list of the wrong length is a config error naming `key`.
    public func values(count: Int, key: String) throws(ModelError) -> [Value] {
        switch self {
        case .all(let v): return [Value](repeating: v, count: count)
        case .each(let vs):
            guard vs.count == count else { throw .config("'\(key)' has \(vs.count) entries for \(count) blocks") }
            return vs
        }
    }
}

// MARK: - Parameter plans

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

// MARK: - Profiling

/// Opt-in wall-clock time per module kind, for finding the next bottleneck. Enabled by the
/// `DECI_PROFILE=1` environment variable (or ``enabled``); costs one branch per module otherwise.
/// Kernels run synchronously on the CPU backend, so wall time per call is the module's time.
public final class ModuleProfiler: @unchecked Sendable {
    public var enabled: Bool
    private let lock = NSLock()
    private var totals: [String: (seconds: Double, calls: Int)] = [:]

    public init(enabled: Bool = ProcessInfo.processInfo.environment["DECI_PROFILE"] == "1") {
        self.enabled = enabled
    }

    @inline(__always)
    func measure<T>(_ label: @autoclosure () -> String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let key = label()
        lock.lock()
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.seconds + dt, old.calls + 1)
        lock.unlock()
        return r
    }

    public func reset() {
        lock.lock()
        totals = [:]
        lock.unlock()
    }

    /// Seconds and call counts per label, largest first.
    public var entries: [(label: String, seconds: Double, calls: Int)] {
        lock.lock()
        defer { lock.unlock() }
        return totals.map { ($0.key, $0.value.seconds, $0.value.calls) }.sorted { $0.seconds > $1.seconds }
    }

    /// A table of the entries with their share of the total.
    public var report: String {
        let e = entries
        let total = e.reduce(0) { $0 + $1.seconds }
        guard total > 0 else { return "(no profile: set DECI_PROFILE=1)" }
        return e.map { String(format: "%8.3f s %5.1f%% %5d calls  ", $0.seconds, 100 * $0.seconds / total, $0.calls) + $0.label }
            .joined(separator: "\n")
    }
}

/// Profile label of an NHWC activation: `640ch 32x32`.
func site(_ t: Tensor) -> String { "\(t.shape[3])ch \(t.shape[1])x\(t.shape[2])" }
