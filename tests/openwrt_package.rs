//! targets/openwrt/ghostwatch/Makefile without the OpenWrt SDK (it cannot be downloaded here):
//! GNU make runs the package's own Build/Prepare and Package/ghostwatch/install recipes
//! against stand-ins for OpenWrt's rules.mk, package.mk and the packages feed's
//! rust-package.mk (the install commands are OpenWrt's own definitions). Then: every file the
//! Makefile names exists, the install lands the binary, the procd script and the config where
//! the procd script looks for them, the config is a conffile and passes `ghostwatch check`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pkg_dir() -> PathBuf {
    repo().join("targets/openwrt/ghostwatch")
}

/// OpenWrt's definitions (include/rules.mk of OpenWrt 23.05) and the two macros the package
/// uses, reduced to what runs a package's recipes: BuildPackage makes `stub-prepare`,
/// `stub-install` and `stub-conffiles` targets.
fn write_stub_sdk(top: &Path) {
    std::fs::create_dir_all(top.join("include")).unwrap();
    std::fs::create_dir_all(top.join("feeds/packages/lang/rust")).unwrap();
    std::fs::write(
        top.join("rules.mk"),
        "CP:=cp -fpR\nINSTALL_DIR:=install -d -m0755\nINSTALL_BIN:=install -m0755\n\
         INSTALL_SUID:=install -m4755\nINSTALL_DATA:=install -m0644\nINSTALL_CONF:=install -m0600\n",
    )
    .unwrap();
    std::fs::write(
        top.join("include/package.mk"),
        "define BuildPackage\n\
         stub-prepare:\n\t$$(Build/Prepare)\n\
         stub-install:\n\t$$(call Package/$(1)/install,$$(DEST))\n\
         stub-conffiles:\n\t$$(file >$$(DEST)/conffiles,$$(Package/$(1)/conffiles))\n\
         stub-depends:\n\t@echo 'DEPENDS=$$(Package/$(1))'\n\
         endef\n",
    )
    .unwrap();
    // The real rust-package.mk defines RustBinPackage (a default install into /usr/bin,
    // used only when the package defines none) and RUST_ARCH_DEPENDS via rust-values.mk.
    std::fs::write(
        top.join("feeds/packages/lang/rust/rust-package.mk"),
        "RUST_ARCH_DEPENDS:=@(aarch64||arm||mips||mipsel||x86_64)\n\
         define RustBinPackage\n\
         \x20 ifndef Package/$(1)/install\n\
         \x20   $$(error $(1) has no install recipe: rust-package.mk would put it in /usr/bin)\n\
         \x20 endif\n\
         endef\n",
    )
    .unwrap();
}

fn make(top: &Path, build: &Path, install: &Path, dest: &Path, target: &str) {
    let out = Command::new("make")
        .arg("-C")
        .arg(pkg_dir())
        .arg(format!("TOPDIR={}", top.display()))
        .arg(format!("INCLUDE_DIR={}/include", top.display()))
        .arg(format!("PKG_BUILD_DIR={}", build.display()))
        .arg(format!("PKG_INSTALL_DIR={}", install.display()))
        .arg(format!("DEST={}", dest.display()))
        .arg(target)
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make {target} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `VAR=${GHOSTWATCH_X:-default}` in the procd script: the default.
fn procd_default(var: &str) -> String {
    let text = std::fs::read_to_string(repo().join("init/ghostwatch.procd")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{var}=")))
        .unwrap_or_else(|| panic!("{var}= not in ghostwatch.procd"));
    let v = line.split_once(":-").expect("a ${X:-default}").1;
    v.trim_end_matches('}').to_string()
}

#[test]
fn makefile_names_existing_files() {
    let text = std::fs::read_to_string(pkg_dir().join("Makefile")).unwrap();
    let mut named = 0;
    for word in text.split(|c: char| c.is_whitespace()) {
        if let Some(rel) = word.strip_prefix("$(GHOSTWATCH_SRC)/") {
            assert!(
                repo().join(rel).exists(),
                "Makefile names {rel}, which does not exist"
            );
            named += 1;
        }
    }
    assert!(
        named >= 5,
        "expected the Makefile to name its sources, found {named}"
    );
    assert!(text.contains("PKG_BUILD_DEPENDS:=rust/host"));
    assert!(text.contains("include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk"));
    assert!(text.contains("DEPENDS:=$(RUST_ARCH_DEPENDS)"));
    assert!(text.contains("$(eval $(call RustBinPackage,ghostwatch))"));
    assert!(repo().join("targets/openwrt/README.md").exists());
}

#[test]
fn install_puts_files_where_the_procd_script_expects_them() {
    if !support::require_program("make", "apt-get install make") {
        return;
    }
    let t = TempDir::new("openwrt");
    let top = t.path().join("sdk");
    let build = t.path().join("build");
    let install = t.path().join("pkg-install");
    let dest = t.path().join("ipkg-root");
    write_stub_sdk(&top);
    std::fs::create_dir_all(install.join("bin")).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    // What `cargo install --root $(PKG_INSTALL_DIR)` leaves there.
    std::fs::copy(
        env!("CARGO_BIN_EXE_ghostwatch"),
        install.join("bin/ghostwatch"),
    )
    .unwrap();

    // Build/Prepare copies a complete cargo package.
    make(&top, &build, &install, &dest, "stub-prepare");
    assert!(build.join("src/main.rs").exists());
    let meta = Command::new("cargo")
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(build.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        meta.status.success(),
        "prepared tree is not a cargo package: {}",
        String::from_utf8_lossy(&meta.stderr)
    );
    assert!(String::from_utf8_lossy(&meta.stdout).contains("\"name\":\"ghostwatch\""));

    make(&top, &build, &install, &dest, "stub-install");
    let prog = procd_default("PROG");
    let conf = procd_default("CONF");
    assert_eq!(prog, "/usr/sbin/ghostwatch");
    assert_eq!(conf, "/etc/ghostwatch.json");

    let bin = dest.join(prog.trim_start_matches('/'));
    assert!(bin.is_file(), "{prog} not installed");
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let init = dest.join("etc/init.d/ghostwatch");
    assert_eq!(
        std::fs::read(&init).unwrap(),
        std::fs::read(repo().join("init/ghostwatch.procd")).unwrap(),
        "/etc/init.d/ghostwatch is not init/ghostwatch.procd"
    );
    assert_eq!(
        std::fs::metadata(&init).unwrap().permissions().mode() & 0o111,
        0o111
    );

    let cfg = dest.join(conf.trim_start_matches('/'));
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o022,
        0,
        "config writable by group/others ({mode:o})"
    );
    let check = Command::new(&bin)
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "installed config fails check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    make(&top, &build, &install, &dest, "stub-conffiles");
    let conffiles = std::fs::read_to_string(dest.join("conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l.trim() == conf),
        "{conf} is not a conffile: {conffiles:?}"
    );
}
