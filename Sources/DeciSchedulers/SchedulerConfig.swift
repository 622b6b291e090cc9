import Foundation

/// How betas are spread over the training timesteps (diffusers `beta_schedule`).
public enum BetaSchedule: String, Sendable, CaseIterable, Codable {
    case linear
    case scaledLinear = "scaled_linear"
    /// The cosine schedule of Nichol & Dhariwal, betas capped at 0.999.
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// What the denoiser predicts (diffusers `prediction_type`).
public enum PredictionType: String, Sendable, CaseIterable, Codable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// How inference timesteps are picked from the training ones (diffusers `timestep_spacing`).
public enum TimestepSpacing: String, Sendable, CaseIterable, Codable {
    case leading, trailing, linspace
}

/// DDPM's variance choice (diffusers `variance_type`); the learned ones need a model with twice the
/// output channels and are refused.
public enum VarianceType: String, Sendable, CaseIterable, Codable {
    case fixedSmall = "fixed_small"
    case fixedSmallLog = "fixed_small_log"
    case fixedLarge = "fixed_large"
    case fixedLargeLog = "fixed_large_log"
    case learned
    case learnedRange = "learned_range"
}

/// The sigma that follows the last step in sigma-based multistep schedulers.
public enum FinalSigmasType: String, Sendable, CaseIterable, Codable {
    case zero
    case sigmaMin = "sigma_min"
}

/// DPM-Solver variants (diffusers `algorithm_type`); `deis` is accepted and mapped to `dpmsolver++`
/// as diffusers does.
public enum DPMAlgorithm: String, Sendable, CaseIterable, Codable {
    case dpmSolver = "dpmsolver"
    case dpmSolverPlusPlus = "dpmsolver++"
    case sdeDPMSolver = "sde-dpmsolver"
    case sdeDPMSolverPlusPlus = "sde-dpmsolver++"
    case deis
}

/// Solver flavours shared by DPM-Solver (`midpoint`, `heun`) and UniPC (`bh1`, `bh2`); each scheduler
/// maps the other family's names onto its default, as diffusers does.
public enum SolverType: String, Sendable, CaseIterable, Codable {
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
    public var lambdaMinClipped: Double?
    public var predictX0: Bool?
    public var disableCorrector: [Int]?
    public var originalInferenceSteps: Int?
    public var timestepScaling: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case setAlphaToOne = "set_alpha_to_one"
        case thresholding
        case dynamicThresholdingRatio = "dynamic_thresholding_ratio"
        case sampleMaxValue = "sample_max_value"
        case skipPrkSteps = "skip_prk_steps"
        case varianceType = "variance_type"
        case useKarrasSigmas = "use_karras_sigmas"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas"
        case useFlowSigmas = "use_flow_sigmas"
        case interpolationType = "interpolation_type"
        case timestepType = "timestep_type"
        case finalSigmasType = "final_sigmas_type"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case lambdaMinClipped = "lambda_min_clipped"
        case predictX0 = "predict_x0"
        case disableCorrector = "disable_corrector"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        className = try c.decodeIfPresent(String.self, forKey: .className)
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps)
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart)
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd)
        betaSchedule = try Self.decodeEnum(c, .betaSchedule)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try Self.decodeEnum(c, .predictionType)
        timestepSpacing = try Self.decodeEnum(c, .timestepSpacing)
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset)
        rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange)
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne)
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding)
        dynamicThresholdingRatio = try c.decodeIfPresent(Double.self, forKey: .dynamicThresholdingRatio)
        sampleMaxValue = try c.decodeIfPresent(Double.self, forKey: .sampleMaxValue)
        skipPrkSteps = try c.decodeIfPresent(Bool.self, forKey: .skipPrkSteps)
        varianceType = try Self.decodeEnum(c, .varianceType)
        useKarrasSigmas = try c.decodeIfPresent(Bool.self, forKey: .useKarrasSigmas)
        useExponentialSigmas = try c.decodeIfPresent(Bool.self, forKey: .useExponentialSigmas)
        useBetaSigmas = try c.decodeIfPresent(Bool.self, forKey: .useBetaSigmas)
        useLuLambdas = try c.decodeIfPresent(Bool.self, forKey: .useLuLambdas)
        useFlowSigmas = try c.decodeIfPresent(Bool.self, forKey: .useFlowSigmas)
        interpolationType = try c.decodeIfPresent(String.self, forKey: .interpolationType)
        timestepType = try c.decodeIfPresent(String.self, forKey: .timestepType)
        finalSigmasType = try Self.decodeEnum(c, .finalSigmasType)
        sigmaMin = try c.decodeIfPresent(Double.self, forKey: .sigmaMin)
        sigmaMax = try c.decodeIfPresent(Double.self, forKey: .sigmaMax)
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder)
        algorithmType = try Self.decodeEnum(c, .algorithmType)
        solverType = try Self.decodeEnum(c, .solverType)
        lowerOrderFinal = try c.decodeIfPresent(Bool.self, forKey: .lowerOrderFinal)
        eulerAtFinal = try c.decodeIfPresent(Bool.self, forKey: .eulerAtFinal)
        lambdaMinClipped = try Self.decodeLooseDouble(c, .lambdaMinClipped)
        predictX0 = try c.decodeIfPresent(Bool.self, forKey: .predictX0)
        disableCorrector = try c.decodeIfPresent([Int].self, forKey: .disableCorrector)
        originalInferenceSteps = try c.decodeIfPresent(Int.self, forKey: .originalInferenceSteps)
        timestepScaling = try c.decodeIfPresent(Double.self, forKey: .timestepScaling)
    }

    private static func decodeEnum<E: RawRepresentable & CaseIterable>(
        _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys
    ) throws -> E? where E.RawValue == String {
        guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = E(rawValue: raw) else {
            throw SchedulerError.invalidConfigValue(key: key.rawValue, value: raw, allowed: E.allCases.map(\.rawValue))
        }
        return value
    }

    /// diffusers writes `-inf` for `lambda_min_clipped`, which JSON can only carry as a string or not at all.
    private static func decodeLooseDouble(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Double? {
        if let d = try? c.decodeIfPresent(Double.self, forKey: key) { return d }
        guard let s = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        switch s.lowercased() {
        case "-inf", "-infinity": return -.infinity
        case "inf", "infinity": return .infinity
        default:
            guard let d = Double(s) else {
                throw SchedulerError.invalidConfigValue(key: key.rawValue, value: s, allowed: ["a number", "-inf"])
            }
            return d
        }
    }

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

/// Errors from building or driving a scheduler. Messages name the key, value or parameter at fault.
public enum SchedulerError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidConfigValue(key: String, value: String, allowed: [String])
    case unreadableConfig(path: String, reason: String)
    case unsupportedOption(scheduler: String, option: String)
    case unknownSchedulerName(String)
    case invalidStepCount(scheduler: String, steps: Int, reason: String)
    case invalidStrength(Double)
    case timestepsNotSet(scheduler: String)
    case timestepNotInSchedule(scheduler: String, timestep: Float)
    case stepPastEnd(scheduler: String, stepIndex: Int)
    case sizeMismatch(parameter: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .invalidConfigValue(key, value, allowed):
            return "scheduler config: '\(key)' is '\(value)'; expected one of \(allowed.joined(separator: ", "))"
        case let .unreadableConfig(path, reason):
            return "cannot read scheduler config \(path): \(reason)"
        case let .unsupportedOption(scheduler, option):
            return "\(scheduler): \(option) is not supported"
        case let .unknownSchedulerName(name):
            return "unknown scheduler '\(name)'; known: \(SchedulerName.knownNames.joined(separator: ", "))"
        case let .invalidStepCount(scheduler, steps, reason):
            return "\(scheduler): \(steps) inference steps: \(reason)"
        case let .invalidStrength(s):
            return "strength must be within 0...1, got \(s)"
        case let .timestepsNotSet(scheduler):
            return "\(scheduler): setTimesteps must be called before stepping"
        case let .timestepNotInSchedule(scheduler, t):
            return "\(scheduler): timestep \(t) is not in the current schedule"
        case let .stepPastEnd(scheduler, index):
            return "\(scheduler): step \(index) is past the end of the schedule"
        case let .sizeMismatch(parameter, expected, actual):
            return "'\(parameter)' has \(actual) elements, expected \(expected)"
        }
    }
}
