import Foundation

/// How betas are spread over the training timesteps (diffusers `beta_schedule`).
public enum BetaSchedule: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case linear
    case scaledLinear = "scaled_linear"
    /// The cosine schedule of Nichol & Dhariwal, betas capped at 0.999.
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// What the denoiser predicts (diffusers `prediction_type`).
public enum PredictionType: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// How inference timesteps are picked from the training ones (diffusers `timestep_spacing`).
public enum TimestepSpacing: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case leading, trailing, linspace
}

/// DDPM's variance choice (diffusers `variance_type`); the learned ones need a model with twice the
/// output channels and are refused.
public enum VarianceType: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case fixedSmall = "fixed_small", fixedSmallLog = "fixed_small_log"
    case fixedLarge = "fixed_large", fixedLargeLog = "fixed_large_log"
    case learned, learnedRange = "learned_range"
}

/// The sigma that follows the last step in sigma-based multistep schedulers.
public enum FinalSigmasType: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case zero
    case sigmaMin = "sigma_min"
}

/// DPM-Solver variants (diffusers `algorithm_type`); `deis` is accepted and mapped to `dpmsolver++`
/// as diffusers does.
public enum DPMAlgorithm: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case dpmSolver = "dpmsolver", dpmSolverPlusPlus = "dpmsolver++"
    case sdeDPMSolver = "sde-dpmsolver", sdeDPMSolverPlusPlus = "sde-dpmsolver++"
    case deis
}

/// Solver flavours shared by DPM-Solver (`midpoint`, `heun`) and UniPC (`bh1`, `bh2`); each scheduler
/// maps the other family's names onto its default, as diffusers does.
public enum SolverType: String, Sendable, CaseIterable, Codable, ConfigEnum {
    case midpoint, heun, logrho, bh1, bh2
}

/// A diffusers `scheduler_config.json`. Every field is optional: a missing key takes the default of
/// the scheduler it is used with, exactly as `SomeScheduler.from_config(config)` does, which is what
/// lets a checkpoint's config drive any scheduler chosen by name. Unknown keys are ignored; unknown
/// strings for enum-valued keys are rejected with `SchedulerError.invalidConfigValue`.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    /// `_class_name`: the scheduler the checkpoint was saved with.
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: BetaSchedule?
    public var trainedBetas: [Double]?
    public var predictionType: PredictionType?
    public var timestepSpacing: TimestepSpacing?
    public var stepsOffset: Int?
    public var rescaleBetasZeroSnr: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var setAlphaToOne: Bool?
    public var thresholding: Bool?
    public var dynamicThresholdingRatio: Double?
    public var sampleMaxValue: Double?
    public var skipPrkSteps: Bool?
    public var varianceType: VarianceType?
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    public var interpolationType: String?
    public var timestepType: String?
    public var finalSigmasType: FinalSigmasType?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var solverOrder: Int?
    public var algorithmType: DPMAlgorithm?
    public var solverType: SolverType?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    /// diffusers writes `-inf` here, which JSON can only carry as a string or not at all.
    public var lambdaMinClipped: Double? {
        get { lambdaMinClippedNumber?.value }
        set { lambdaMinClippedNumber = newValue.map(LooseNumber.init) }
    }
    private var lambdaMinClippedNumber: LooseNumber?
    public var predictX0: Bool?
    public var disableCorrector: [Int]?
    public var originalInferenceSteps: Int?
    public var timestepScaling: Double?

    // Several keys a line (as the UNet configs write theirs), grouped by what they configure: the
    // training schedule, spacing, clipping and thresholding, sigmas, the multistep solvers, LCM.
    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case predictionType = "prediction_type", timestepSpacing = "timestep_spacing", stepsOffset = "steps_offset"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case thresholding, dynamicThresholdingRatio = "dynamic_thresholding_ratio", sampleMaxValue = "sample_max_value"
        case skipPrkSteps = "skip_prk_steps", varianceType = "variance_type"
        case useKarrasSigmas = "use_karras_sigmas", useExponentialSigmas = "use_exponential_sigmas", useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas", useFlowSigmas = "use_flow_sigmas"
        case interpolationType = "interpolation_type", timestepType = "timestep_type", finalSigmasType = "final_sigmas_type"
        case sigmaMin = "sigma_min", sigmaMax = "sigma_max"
        case solverOrder = "solver_order", algorithmType = "algorithm_type", solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final", lambdaMinClippedNumber = "lambda_min_clipped"
        case predictX0 = "predict_x0", disableCorrector = "disable_corrector"
        case originalInferenceSteps = "original_inference_steps", timestepScaling = "timestep_scaling"
    }

    public init() {}

    /// Reads a `scheduler_config.json` file.
    public static func load(contentsOf url: URL) throws(SchedulerError) -> SchedulerConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableConfig(path: url.path, reason: error.localizedDescription)
        }
        return try decode(data, source: url.path)
    }

    /// Decodes a `scheduler_config.json` document; `source` names it in error messages.
    public static func decode(_ data: Data, source: String = "scheduler config") throws(SchedulerError) -> SchedulerConfig {
        do {
            return try JSONDecoder().decode(SchedulerConfig.self, from: data)
        } catch let e as SchedulerError {
            throw e
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw .unreadableConfig(path: source, reason: "wrong type for '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))': \(ctx.debugDescription)")
        } catch {
            throw .unreadableConfig(path: source, reason: String(describing: error))
        }
    }
}

/// An enum-valued config key: an unknown string is a `SchedulerError` naming the key and the
/// accepted values rather than a generic decoding error.
protocol ConfigEnum: RawRepresentable, CaseIterable, Decodable where RawValue == String {}

extension ConfigEnum {
    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: raw) else {
            throw SchedulerError.invalidConfigValue(key: decoder.codingPath.last?.stringValue ?? "", value: raw,
                                                    allowed: Self.allCases.map(\.rawValue))
        }
        self = value
    }
}

/// A number that may also come as a string: "-inf", "inf" (any case, or spelled out) or a decimal.
struct LooseNumber: Codable, Sendable, Equatable {
    var value: Double

    init(_ value: Double) { self.value = value }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) {
            value = d
            return
        }
        let s = try c.decode(String.self)
        switch s.lowercased() {
        case "-inf", "-infinity": value = -.infinity
        case "inf", "infinity": value = .infinity
        default:
            guard let d = Double(s) else {
                throw SchedulerError.invalidConfigValue(key: decoder.codingPath.last?.stringValue ?? "", value: s,
                                                        allowed: ["a number", "-inf"])
            }
            value = d
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}
