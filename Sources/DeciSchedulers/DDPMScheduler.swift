import DeciRandom
import Foundation

/// Ancestral sampling of the DDPM posterior q(x_{t-1} | x_t, x0) (Ho et al. 2020), adding noise on
/// every step with t > 0. Matches diffusers `scheduling_ddpm.py`.
public struct DDPMScheduler: AlphaBarScheduler, SampleClamping {
    public let settings: ScheduleSettings
    public let varianceType: VarianceType
    var clamp: SampleClamp

    public private(set) var timesteps: [Float] = []
    private var intTimesteps: [Int] = []

    public init(config: SchedulerConfig) throws(SchedulerError) {
        settings = try ScheduleSettings(config: config, zeroSNR: .plain, spacing: .leading)
        varianceType = config.varianceType ?? .fixedSmall
        // The learned variances need a model with doubled output channels; diffusers' fixed_large_log
        // takes the square root of a log (NaN), so it is refused too.
        if varianceType == .learned || varianceType == .learnedRange || varianceType == .fixedLargeLog {
            throw .unsupportedOption(scheduler: Self.className, option: "variance_type '\(varianceType.rawValue)'")
        }
        clamp = SampleClamp(config: config, clipSampleDefault: true)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        try checkStepCount(steps)
        intTimesteps = Spacing.timesteps(timestepSpacing, steps: steps, trainSteps: trainSteps, offset: stepsOffset)
            .map { Int(NumPy.round($0)) }
        timesteps = intTimesteps.map { Float($0) }
    }

    /// The next timestep in the schedule, -1 after the last.
    private func previous(_ t: Int) throws(SchedulerError) -> Int {
        guard let i = intTimesteps.firstIndex(of: t) else {
            throw .timestepNotInSchedule(scheduler: className, timestep: Float(t))
        }
        return i + 1 < intTimesteps.count ? intTimesteps[i + 1] : -1
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard !intTimesteps.isEmpty else { throw .timestepsNotSet(scheduler: className) }
        try checkSize(modelOutput, "modelOutput", sample.count)
        let t = try trainIndex(timestep)
        let prevT = try previous(t)
        let alphaProdT = schedule.alphasCumprod[t]
        let alphaProdPrev: Float = prevT >= 0 ? schedule.alphasCumprod[prevT] : 1
        let betaProdT = 1 - alphaProdT, betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProdT / alphaProdPrev
        let currentBeta = 1 - currentAlpha

        var x0 = Parameterization.x0(predictionType, output: modelOutput, sample: sample,
                                     alpha: alphaProdT.squareRoot(), sigma: betaProdT.squareRoot())
        x0 = clamp.apply(x0)

        // Formula (7) of the DDPM paper: the posterior mean.
        let x0Coeff = alphaProdPrev.squareRoot() * currentBeta / betaProdT
        let sampleCoeff = currentAlpha.squareRoot() * betaProdPrev / betaProdT
        var prev = map2(x0, sample) { (x, s) in x0Coeff * x + sampleCoeff * s }

        if t > 0 {
            let z = noise.normal(count: sample.count)
            var variance = (1 - alphaProdPrev) / (1 - alphaProdT) * currentBeta
            variance = max(variance, 1e-20)
            let scale: Float
            switch varianceType {
            case .fixedSmall: scale = variance.squareRoot()
            case .fixedSmallLog: scale = exp32(0.5 * log32(variance))
            case .fixedLarge: scale = currentBeta.squareRoot()
            case .fixedLargeLog, .learned, .learnedRange: scale = 0  // refused in init
            }
            prev = map2(prev, z) { (p, n) in p + scale * n }
        }
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
