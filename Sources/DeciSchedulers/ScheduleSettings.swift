/// The settings every scheduler reads from its config the same way: the training noise schedule,
/// what the model predicts, and how inference timesteps are spaced and offset. Each scheduler
/// names only its own defaults (diffusers' constructor defaults differ per class).
public struct ScheduleSettings: Sendable, Equatable {
    /// The training noise schedule (betas, alphas_cumprod).
    public let schedule: NoiseSchedule
    /// `prediction_type` (default epsilon in every diffusers scheduler).
    public let predictionType: PredictionType
    /// `timestep_spacing`.
    public let timestepSpacing: TimestepSpacing
    /// `steps_offset` (default 0).
    public let stepsOffset: Int

    init(config: SchedulerConfig, betaStart: Double = 0.0001, betaEnd: Double = 0.02, betaSchedule: BetaSchedule = .linear,
         zeroSNR: NoiseSchedule.ZeroSNROption, spacing: TimestepSpacing) throws(SchedulerError) {
        schedule = try NoiseSchedule(config: config, betaStart: betaStart, betaEnd: betaEnd, betaSchedule: betaSchedule,
                                     zeroSNR: zeroSNR)
        predictionType = config.predictionType ?? .epsilon
        timestepSpacing = config.timestepSpacing ?? spacing
        stepsOffset = config.stepsOffset ?? 0
    }
}

extension ScheduleSettings {
    /// The clean-sample (x0) estimate of a variance-preserving `sample` at `timestep` from the
    /// model's (guided) output, with alpha and sigma of the training timestep nearest `timestep`:
    /// for schedulers whose step does not report one (PNDM, UniPC, DPM-Solver's non-"++"
    /// variants), e.g. for previews. Where alpha is 0 (the zero-SNR end of the schedule) an epsilon
    /// model's estimate is undefined and the sample itself is returned.
    public func predictedOriginalSample(modelOutput: [Float], sample: [Float], timestep: Float) -> [Float] {
        let bars = schedule.alphasCumprod
        guard !bars.isEmpty, modelOutput.count == sample.count, timestep.isFinite else { return sample }
        let t = min(max(Int(timestep.rounded()), 0), bars.count - 1)
        let alpha = bars[t].squareRoot(), sigma = (1 - bars[t]).squareRoot()
        if predictionType == .epsilon && alpha < 1e-6 { return sample }
        return Parameterization.x0(predictionType, output: modelOutput, sample: sample, alpha: alpha, sigma: sigma)
    }
}
