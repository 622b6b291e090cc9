/// The scheduler families this module implements, one per diffusers class.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim = "DDIMScheduler"
    case pndm = "PNDMScheduler"
    case ddpm = "DDPMScheduler"
    case euler = "EulerDiscreteScheduler"
    case eulerAncestral = "EulerAncestralDiscreteScheduler"
    case heun = "HeunDiscreteScheduler"
    case lms = "LMSDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case uniPC = "UniPCMultistepScheduler"
    case lcm = "LCMScheduler"

    /// The diffusers class name.
    public var className: String { rawValue }
}

/// A user-facing scheduler choice: a family plus the config overrides its name implies, e.g.
/// "DPM++ 2M Karras" = DPM-Solver multistep with `use_karras_sigmas`. Everything else (beta schedule,
/// prediction type, spacing, ...) still comes from the checkpoint's config.
public struct SchedulerName: Sendable, Equatable {
    public var kind: SchedulerKind
    public var useKarrasSigmas: Bool?
    public var algorithm: DPMAlgorithm?

    public init(kind: SchedulerKind, useKarrasSigmas: Bool? = nil, algorithm: DPMAlgorithm? = nil) {
        self.kind = kind
        self.useKarrasSigmas = useKarrasSigmas
        self.algorithm = algorithm
    }

    /// Names accepted by `init(parsing:)`, besides the diffusers class names; case, spaces, "-" and
    /// "_" are ignored, so "Euler a", "euler_a" and "EULER-A" are the same.
    public static let knownNames = [
        "ddim", "pndm", "plms", "ddpm", "euler", "euler_a", "euler ancestral", "heun", "lms", "lms karras",
        "dpm++2m", "dpm++ 2m karras", "dpm++2m_sde", "dpm++ 2m sde karras", "unipc", "lcm",
    ]

    private static let table: [String: SchedulerName] = {
        var t: [String: SchedulerName] = [
            "ddim": .init(kind: .ddim),
            "pndm": .init(kind: .pndm), "plms": .init(kind: .pndm),
            "ddpm": .init(kind: .ddpm),
            "euler": .init(kind: .euler),
            "eulera": .init(kind: .eulerAncestral), "eulerancestral": .init(kind: .eulerAncestral),
            "heun": .init(kind: .heun),
            "lms": .init(kind: .lms), "lmskarras": .init(kind: .lms, useKarrasSigmas: true),
            "unipc": .init(kind: .uniPC),
            "lcm": .init(kind: .lcm),
        ]
        for prefix in ["dpm++", "dpmpp", "dpmsolver++"] {
            t[prefix + "2m"] = .init(kind: .dpmSolverMultistep, algorithm: .dpmSolverPlusPlus)
            t[prefix + "2mkarras"] = .init(kind: .dpmSolverMultistep, useKarrasSigmas: true, algorithm: .dpmSolverPlusPlus)
            t[prefix + "2msde"] = .init(kind: .dpmSolverMultistep, algorithm: .sdeDPMSolverPlusPlus)
            t[prefix + "2msdekarras"] = .init(kind: .dpmSolverMultistep, useKarrasSigmas: true, algorithm: .sdeDPMSolverPlusPlus)
        }
        for kind in SchedulerKind.allCases { t[normalize(kind.className)] = .init(kind: kind) }
        return t
    }()

    private static func normalize(_ s: String) -> String {
        String(s.lowercased().filter { $0 != " " && $0 != "_" && $0 != "-" })
    }

    /// Parses a name such as "ddim", "Euler a", "DPM++ 2M Karras", "dpm++2m_sde" or a diffusers class name.
    public init(parsing name: String) throws(SchedulerError) {
        guard let found = Self.table[Self.normalize(name)] else { throw .unknownSchedulerName(name) }
        self = found
    }

    /// `config` with this name's overrides applied.
    public func applied(to config: SchedulerConfig) -> SchedulerConfig {
        var c = config
        if let useKarrasSigmas { c.useKarrasSigmas = useKarrasSigmas }
        if let algorithm { c.algorithmType = algorithm }
        return c
    }
}

/// Builds the scheduler the config's `_class_name` names.
public func makeScheduler(config: SchedulerConfig) throws(SchedulerError) -> any Scheduler {
    guard let name = config.className, let kind = SchedulerKind(rawValue: name) else {
        throw .invalidConfigValue(key: "_class_name", value: config.className ?? "(missing)",
                                  allowed: SchedulerKind.allCases.map(\.className))
    }
    return try makeScheduler(kind: kind, config: config)
}

/// Builds the scheduler `name` chooses over a checkpoint's config, as diffusers'
/// `SomeScheduler.from_config(pipe.scheduler.config, **overrides)` does.
public func makeScheduler(named name: String, config: SchedulerConfig) throws(SchedulerError) -> any Scheduler {
    let parsed = try SchedulerName(parsing: name)
    return try makeScheduler(kind: parsed.kind, config: parsed.applied(to: config))
}

/// Builds a scheduler of `kind` from `config`.
public func makeScheduler(kind: SchedulerKind, config: SchedulerConfig) throws(SchedulerError) -> any Scheduler {
    switch kind {
    case .ddim: return try DDIMScheduler(config: config)
    case .pndm: return try PNDMScheduler(config: config)
    case .ddpm: return try DDPMScheduler(config: config)
    case .euler: return try EulerDiscreteScheduler(config: config)
    case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: config)
    case .heun: return try HeunDiscreteScheduler(config: config)
    case .lms: return try LMSDiscreteScheduler(config: config)
    case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: config)
    case .uniPC: return try UniPCMultistepScheduler(config: config)
    case .lcm: return try LCMScheduler(config: config)
    }
}
