# Stage 2: Galactic lenses, one per entry of the config's fields (the {lens} wildcard). One job
# per rigidity bin reduces that bin's shards to a row-normalised part; one job divides all
# parts by the global maximum column sum and writes the lens folder with lens.cfg last; one job
# draws the diagnostic plots; with several lenses one more overlays their deflections.
# Output format: DESIGN.md section 4, "Lens".
import os


rule lens_part:
    input:
        bin_shards,
    output:
        part=f"{LENS_PARTS}/bin{{bin}}.npz",
        stats=f"{LENS_PARTS}/bin{{bin}}.json",
    log:
        f"{LOGS}/lens/{{lens}}/bin{{bin}}.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("lens_part")
    resources:
        **rule_resources("lens_part"),
    params:
        field=lambda wildcards: lens_field(wildcards).model,
        nside=lookup(dpath="lens/nside", within=config),
    shell:
        "crsky lens part --shards {input:q} --field {params.field:q} --nside {params.nside:q}"
        " --bin {wildcards.bin:q} --output {output.part:q} > {log:q} 2>&1"


rule lens:
    input:
        parts=expand(f"{LENS_PARTS}/bin{{bin}}.npz", bin=bin_ids(), allow_missing=True),
        stats=expand(f"{LENS_PARTS}/bin{{bin}}.json", bin=bin_ids(), allow_missing=True),
    output:
        cfg=lens_cfg("{lens}"),
        diagnostics=report(
            f"{LENS}/diagnostics.csv",
            caption="../report/lens_diagnostics.rst",
            category="Lens",
            subcategory="{lens}",
            labels={"lens": "{lens}", "item": "diagnostics table"},
        ),
        provenance=f"{LENS}/provenance.json",
        maps=[f"{LENS}/transparency.fits", f"{LENS}/deflection.fits"],
        parts=lens_part_files(),
    log:
        f"{LOGS}/lens/{{lens}}/lens.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("lens")
    resources:
        **rule_resources("lens"),
    params:
        lens_dir=lambda wildcards, output: os.path.dirname(output.cfg),
        mldat="--mldat" if config["lens"]["write_mldat"] else "--no-mldat",
        compress="--compress" if config["lens"]["compress"] else "",
    shell:
        "crsky lens cfg --parts {input.parts:q} --lens-dir {params.lens_dir:q}"
        " {params.mldat:q} {params.compress:q} > {log:q} 2>&1"


rule lens_plots:
    input:
        cfg=rules.lens.output.cfg,
        diagnostics=rules.lens.output.diagnostics,
        maps=rules.lens.output.maps,
    output:
        deflection=report(
            f"{LENS}/deflection.png",
            caption="../report/lens_deflection.rst",
            category="Lens",
            subcategory="{lens}",
            labels={"lens": "{lens}", "item": "deflection vs rigidity"},
        ),
        transparency=report(
            f"{LENS}/transparency.png",
            caption="../report/lens_transparency.rst",
            category="Lens",
            subcategory="{lens}",
            labels={"lens": "{lens}", "item": "magnification maps"},
        ),
        deflection_maps=report(
            f"{LENS}/deflection_maps.png",
            caption="../report/lens_deflection_maps.rst",
            category="Lens",
            subcategory="{lens}",
            labels={"lens": "{lens}", "item": "deflection maps"},
        ),
    log:
        f"{LOGS}/lens/{{lens}}/plots.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("lens_plots")
    resources:
        **rule_resources("lens_plots"),
    params:
        lens_dir=lambda wildcards, input: os.path.dirname(input.cfg),
        maps=lookup(dpath="lens/transparency_maps", within=config),
    shell:
        "crsky lens plots --lens-dir {params.lens_dir:q} --maps {params.maps:q}"
        " --deflection-png {output.deflection:q}"
        " --transparency-png {output.transparency:q}"
        " --deflection-maps-png {output.deflection_maps:q} > {log:q} 2>&1"


rule lens_comparison:
    input:
        diagnostics=expand(
            f"{RESULTS}/lens/{{lens}}/diagnostics.csv", lens=list(LENSES)
        ),
        cfgs=expand(lens_cfg("{lens}"), lens=list(LENSES)),
    output:
        report(
            LENS_COMPARISON,
            caption="../report/lens_comparison.rst",
            category="Lens",
        ),
    log:
        f"{LOGS}/lens/comparison.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("lens_plots")
    resources:
        **rule_resources("lens_plots"),
    params:
        lens_dirs=lambda wildcards, input: [os.path.dirname(f) for f in input.cfgs],
    shell:
        "crsky lens compare --lens-dirs {params.lens_dirs:q}"
        " --deflection-png {output:q} > {log:q} 2>&1"
