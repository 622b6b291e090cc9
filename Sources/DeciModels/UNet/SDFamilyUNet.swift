// What both SD-family UNets (U-Net-NAS and UNet2DConditionModel) share above their blocks: the
// Denoiser header, the shell's forward pass around the blocks, loading and parameter counting.
import DeciTensor
import DeciWeights
import Foundation

/// The common base of the SD-family UNets: the ``Denoiser`` properties, the ``UNetShell`` at the
/// checkpoint root, and a forward pass that runs the shell around a subclass's blocks. Subclasses
/// build the shell, then their blocks, then call `init(shell:...)`, which fails on unused tensors.
public class SDFamilyUNet: Denoiser, @unchecked Sendable {
    public let precision: Precision
    public let inChannels: Int
    public let outChannels: Int
    public let contextChannels: Int
    public let latentSizeMultiple: Int
    /// conv_in, time embedding and output head.
    let shell: UNetShell

    /// Takes the shell the subclass built from the root of `w` (before its blocks, so a parameter
    /// plan lists the shell first, the order the benchmarks' random checkpoints are written in) and
    /// fails if the scope holds tensors the model did not use.
    init(shell: UNetShell, config: UNetShellConfig, weights w: WeightScope, contextChannels: Int, downsamplers: Int,
         precision: Precision) throws(ModelError) {
        self.precision = precision
        inChannels = config.inChannels
        outChannels = config.outChannels
        self.contextChannels = contextChannels
        latentSizeMultiple = 1 << downsamplers
        self.shell = shell
        do { try w.finish() } catch { throw .weights(error) }
    }

    public final func callAsFunction(_ latents: Tensor, timesteps: [Float], context: Tensor) -> Tensor {
        checkInputs(latents, timesteps: timesteps, context: context)
        return shell(latents, timesteps: timesteps) { h, tembSilu in blocks(h, tembSilu: tembSilu, context: context) }
    }

    /// The model's own blocks between conv_in and the output head: `h` is conv_in's output,
    /// `tembSilu` SiLU(time embedding) `[n, temb]`. Every subclass overrides it.
    func blocks(_ h: Tensor, tembSilu: Tensor, context: Tensor) -> Tensor {
        preconditionFailure("\(type(of: self)) does not override blocks(_:tembSilu:context:)")
    }
}

/// A UNet config decoded from a checkpoint's `config.json`, whose parameters can be planned without
/// loading anything.
public protocol UNetConfiguration: Decodable, Sendable {
    /// Throws a config error when the blocks the config describes do not fit together.
    func validateLayout() throws(ModelError)
    /// The tensors the model expects, by checkpoint key and PyTorch shape.
    func parameterPlan() throws(ModelError) -> ParameterPlan
}

extension UNetConfiguration {
    /// Reads and validates the `config.json` at `url`; errors name its path.
    public static func load(contentsOf url: URL) throws(ModelError) -> Self {
        try decode(readConfigFile(url), source: url.path)
    }

    /// Decodes and validates config JSON; `source` names it in errors.
    public static func decode(_ data: Data, source: String = "config.json") throws(ModelError) -> Self {
        let config = try decodeConfig(Self.self, from: data, source: source)
        do { try config.validateLayout() } catch { throw .config("\(source): \(error.description.replacingOccurrences(of: "config: ", with: ""))") }
        return config
    }
}

/// An SD-family UNet built from its config and a weight scope; loading and counting follow.
public protocol SDFamilyUNetModel: SDFamilyUNet {
    associatedtype Config: UNetConfiguration
    init(config: Config, weights: WeightScope, precision: Precision) throws(ModelError)
}

extension SDFamilyUNetModel {
    /// Loads a diffusers component folder: `config.json` and the weights
    /// ``ComponentWeights/locate(in:variant:)`` finds there (fp16 or fp32, one file or shards).
    /// `loras` are merged into the weights as the layers are built.
    public static func load(directory: String, precision: Precision, variant: String? = nil,
                            loras: LoRASet? = nil) throws(ModelError) -> Self {
        try loadComponent(directory: directory, variant: variant, config: Config.load(contentsOf:), loras: loras,
                          component: .denoiser) { (config, store) throws(ModelError) in
            try Self(config: config, weights: store.scoped(""), precision: precision)
        }
    }

    /// Parameters of the model a config describes, without loading or allocating it.
    public static func parameterCount(_ config: Config) throws(ModelError) -> Int {
        try config.parameterPlan().parameterCount
    }
}
