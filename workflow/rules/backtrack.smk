# Stage 1: backtrack antiparticles from Earth to the edge of the Galaxy, one job per
# (lens, rigidity bin, shard); each lens of the config's fields has its own field model.
# Output format: DESIGN.md section 4, "Backtracking shard".


rule backtrack:
    output:
        f"{RESULTS}/backtrack/{{lens}}/bin{{bin}}/shard{{shard}}.h5",
    log:
        f"{LOGS}/backtrack/{{lens}}/bin{{bin}}/shard{{shard}}.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("backtrack")
    resources:
        **rule_resources("backtrack"),
    params:
        seed=config["seed"],
        field=lambda wildcards: lens_field(wildcards).model,
        field_options=lambda wildcards: json.dumps(lens_field(wildcards).options),
        bins=[BINS.log10_rigidity_min, BINS.log10_rigidity_max, BINS.n_bins],
        particles_per_bin=SHARDING.particles_per_bin,
        shard_size=SHARDING.shard_size,
        nside=lookup(dpath="lens/nside", within=config),
        engine=lookup(dpath="backtrack/engine", within=config),
        tolerance=lookup(dpath="backtrack/tolerance", within=config),
        min_step_kpc=lookup(dpath="backtrack/min_step_kpc", within=config),
        max_step_kpc=lookup(dpath="backtrack/max_step_kpc", within=config),
        max_path_length_kpc=lookup(dpath="backtrack/max_path_length_kpc", within=config),
        r_galaxy_kpc=lookup(dpath="backtrack/r_galaxy_kpc", within=config),
        integrator=lookup(dpath="backtrack/integrator", within=config),
    shell:
        "crsky backtrack --output {output:q} --seed {params.seed:q} --field {params.field:q}"
        " --field-options {params.field_options:q} --bins {params.bins:q}"
        " --bin {wildcards.bin:q} --particles-per-bin {params.particles_per_bin:q}"
        " --shard-size {params.shard_size:q} --shard {wildcards.shard:q}"
        " --nside {params.nside:q} --engine {params.engine:q} --tolerance {params.tolerance:q}"
        " --min-step-kpc {params.min_step_kpc:q} --max-step-kpc {params.max_step_kpc:q}"
        " --max-path-length-kpc {params.max_path_length_kpc:q}"
        " --r-galaxy-kpc {params.r_galaxy_kpc:q} --integrator {params.integrator:q}"
        " --threads {threads:q} > {log:q} 2>&1"
