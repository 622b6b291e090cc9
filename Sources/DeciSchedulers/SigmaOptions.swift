/// The sigma-schedule options that Euler, DPM-Solver and UniPC read from their config alike.
/// Options diffusers offers that this module does not implement are refused by name rather than
/// silently ignored.
public struct SigmaOptions: Sendable, Equatable {
    /// `use_karras_sigmas`: Karras et al. (2022) rho-spaced sigmas instead of the trained ones.
    public let useKarrasSigmas: Bool
    /// `final_sigmas_type`: the sigma after the last step.
    public let finalSigmasType: FinalSigmasType
    /// `sigma_min` / `sigma_max`: the Karras range where a config overrides the trained one (Euler
    /// and UniPC read them; DPM-Solver has no such keys).
    public let sigmaMin: Double?
    public let sigmaMax: Double?

    init(config: SchedulerConfig, scheduler: String) throws(SchedulerError) {
        try refuseUnsupportedSigmaOptions(config, scheduler: scheduler)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        finalSigmasType = config.finalSigmasType ?? .zero
        sigmaMin = config.sigmaMin
        sigmaMax = config.sigmaMax
    }
}

/// The options of diffusers' sigma schedulers that none here implements.
func refuseUnsupportedSigmaOptions(_ config: SchedulerConfig, scheduler: String) throws(SchedulerError) {
    if config.useExponentialSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_exponential_sigmas") }
    if config.useBetaSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_beta_sigmas") }
    if config.useFlowSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_flow_sigmas") }
    if config.useLuLambdas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_lu_lambdas") }
}
