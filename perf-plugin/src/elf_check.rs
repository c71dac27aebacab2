//! Checks, before `dlopen`, that the bytes of a plugin are a whole ELF shared library for this
//! host, so that the dynamic loader never reads or maps past the end of the file, or follows
//! a header value out of the library's own memory (feature `host`).
//!
//! The dynamic loader trusts the headers: a program header that maps bytes beyond the end of
//! the file gives `SIGBUS` on first access, and a dynamic-section pointer outside the mapped
//! segments gives `SIGSEGV` inside `dlopen`. Both kill the host without a message. What is
//! checked here is everything the loader reads before it runs the library's code: the ELF
//! identification and header, the program headers (every `PT_LOAD` and the `PT_DYNAMIC`
//! segment inside the file, in order, aligned), the section headers (inside the file, each
//! section's bytes inside the file), and the dynamic section (terminated, its table
//! addresses inside the loaded segments, its string offsets inside the string table). The
//! *contents* of code and data (relocations, symbols, instructions) are not checked: a
//! library whose headers are intact but whose code is garbage can still crash when it runs,
//! as any native code can.

// Header words are `u32` on a 32-bit host and `u64` on a 64-bit one; the `.into()` that widen
// them are needed there and no-ops here.
#![allow(clippy::useless_conversion)]

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

/// The ELF header type of this host (64-bit or 32-bit, either byte order).
#[cfg(target_pointer_width = "64")]
type HostElf = elf::FileHeader64<Endianness>;
#[cfg(target_pointer_width = "32")]
type HostElf = elf::FileHeader32<Endianness>;

#[cfg(target_pointer_width = "64")]
const HOST_CLASS: u8 = elf::ELFCLASS64;
#[cfg(target_pointer_width = "32")]
const HOST_CLASS: u8 = elf::ELFCLASS32;

/// The `e_machine` of this host, `None` where this file does not know it (then any machine
/// is left to the dynamic loader, which refuses a wrong one cleanly).
const HOST_MACHINE: Option<(u16, &str)> = if cfg!(target_arch = "x86_64") {
    Some((elf::EM_X86_64, "x86-64"))
} else if cfg!(target_arch = "aarch64") {
    Some((elf::EM_AARCH64, "AArch64"))
} else if cfg!(target_arch = "x86") {
    Some((elf::EM_386, "x86"))
} else if cfg!(target_arch = "arm") {
    Some((elf::EM_ARM, "ARM"))
} else if cfg!(any(target_arch = "riscv64", target_arch = "riscv32")) {
    Some((elf::EM_RISCV, "RISC-V"))
} else if cfg!(target_arch = "powerpc64") {
    Some((elf::EM_PPC64, "PowerPC64"))
} else if cfg!(target_arch = "s390x") {
    Some((elf::EM_S390, "s390x"))
} else if cfg!(target_arch = "loongarch64") {
    Some((elf::EM_LOONGARCH, "LoongArch"))
} else {
    None
};

/// `DT_RELRSZ` and `DT_RELR` (not in `object::elf`).
const DT_RELRSZ: u32 = 35;
const DT_RELR: u32 = 36;

/// Dynamic tags whose value is an address in the library, with the tag giving the size of
/// the table there (`None`: only the start is checked).
const ADDRESS_TAGS: &[(u32, &str, Option<u32>)] = &[
    (elf::DT_PLTGOT, "DT_PLTGOT", None),
    (elf::DT_HASH, "DT_HASH", None),
    (elf::DT_GNU_HASH, "DT_GNU_HASH", None),
    (elf::DT_STRTAB, "DT_STRTAB", Some(elf::DT_STRSZ)),
    (elf::DT_SYMTAB, "DT_SYMTAB", None),
    (elf::DT_RELA, "DT_RELA", Some(elf::DT_RELASZ)),
    (elf::DT_REL, "DT_REL", Some(elf::DT_RELSZ)),
    (elf::DT_JMPREL, "DT_JMPREL", Some(elf::DT_PLTRELSZ)),
    (DT_RELR, "DT_RELR", Some(DT_RELRSZ)),
    (elf::DT_INIT, "DT_INIT", None),
    (elf::DT_FINI, "DT_FINI", None),
    (
        elf::DT_INIT_ARRAY,
        "DT_INIT_ARRAY",
        Some(elf::DT_INIT_ARRAYSZ),
    ),
    (
        elf::DT_FINI_ARRAY,
        "DT_FINI_ARRAY",
        Some(elf::DT_FINI_ARRAYSZ),
    ),
    (
        elf::DT_PREINIT_ARRAY,
        "DT_PREINIT_ARRAY",
        Some(elf::DT_PREINIT_ARRAYSZ),
    ),
    (elf::DT_VERSYM, "DT_VERSYM", None),
    (elf::DT_VERDEF, "DT_VERDEF", None),
    (elf::DT_VERNEED, "DT_VERNEED", None),
];

/// Dynamic tags whose value is an offset into the dynamic string table.
const STRING_TAGS: &[(u32, &str)] = &[
    (elf::DT_NEEDED, "DT_NEEDED"),
    (elf::DT_SONAME, "DT_SONAME"),
    (elf::DT_RPATH, "DT_RPATH"),
    (elf::DT_RUNPATH, "DT_RUNPATH"),
];

/// A loadable segment: where its bytes are in the file and where they go in memory.
#[derive(Clone, Copy)]
struct Load {
    vaddr: u64,
    file_end_vaddr: u64,
    mem_end_vaddr: u64,
}

/// Why a file is not a whole ELF shared library for this host.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// A sentence for the user, without the path.
    pub(crate) detail: String,
    /// The ELF reader's error, when it is what found the fault.
    pub(crate) source: Option<object::read::Error>,
}

impl Refusal {
    /// A fault the ELF reader found: `detail` says where, `source` is the reader's error.
    fn parse(detail: String, source: object::read::Error) -> Refusal {
        Refusal {
            detail,
            source: Some(source),
        }
    }
}

/// A fault found by the checks here.
fn refuse<T>(detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        detail: detail.into(),
        source: None,
    })
}

/// Checks that `data` (the whole file) is an ELF shared library for this host whose headers
/// stay inside the file.
pub(crate) fn check(data: &[u8]) -> Result<(), Refusal> {
    let len = data.len() as u64;
    if data.is_empty() {
        return refuse("the file is empty (0 bytes): truncated, or still being copied?");
    }
    if !data.starts_with(&elf::ELFMAG) {
        let start: String = data
            .iter()
            .take(8)
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        if elf::ELFMAG.starts_with(data) {
            return refuse(format!(
                "the file is {len} bytes, too short for an ELF header: truncated?"
            ));
        }
        return refuse(format!(
            "not an ELF file (it starts with \"{start}\", not \"\\x7fELF\")"
        ));
    }
    let header_size = std::mem::size_of::<HostElf>() as u64;
    if data.len() < 16 {
        return refuse(format!(
            "the file is {len} bytes, too short for an ELF header: truncated?"
        ));
    }
    let (class, byte_order, version) = (data[4], data[5], data[6]);
    if class != HOST_CLASS {
        let bits = |c: u8| match c {
            elf::ELFCLASS32 => Some("32-bit"),
            elf::ELFCLASS64 => Some("64-bit"),
            _ => None,
        };
        let host = bits(HOST_CLASS).unwrap_or("?");
        return refuse(match bits(class) {
            Some(file) => format!("a {file} ELF file, but this host is {host}"),
            None => format!("an ELF file of unknown class {class}, but this host is {host}"),
        });
    }
    let host_order = if cfg!(target_endian = "little") {
        elf::ELFDATA2LSB
    } else {
        elf::ELFDATA2MSB
    };
    if byte_order != host_order {
        let order = |o: u8| match o {
            elf::ELFDATA2LSB => Some("little-endian"),
            elf::ELFDATA2MSB => Some("big-endian"),
            _ => None,
        };
        let host = order(host_order).unwrap_or("?");
        return refuse(match order(byte_order) {
            Some(file) => format!("a {file} ELF file, but this host is {host}"),
            None => {
                format!("an ELF file of unknown byte order {byte_order}, but this host is {host}")
            }
        });
    }
    if version != elf::EV_CURRENT {
        return refuse(format!("unsupported ELF version {version}"));
    }
    if len < header_size {
        return refuse(format!(
            "the file is {len} bytes, shorter than the {header_size}-byte ELF header: truncated?"
        ));
    }
    let header = HostElf::parse(data)
        .map_err(|e| Refusal::parse(format!("unreadable ELF header ({e})"), e))?;
    let endian = header
        .endian()
        .map_err(|e| Refusal::parse(format!("unreadable ELF header ({e})"), e))?;

    let e_type = header.e_type(endian);
    if e_type != elf::ET_DYN {
        let kind = match e_type {
            elf::ET_REL => "a relocatable object (.o)",
            elf::ET_EXEC => "an executable",
            elf::ET_CORE => "a core dump",
            _ => "an unknown ELF type",
        };
        return refuse(format!(
            "not a shared library: it is {kind} (ELF type {e_type})"
        ));
    }
    let e_version = header.e_version(endian);
    if e_version != u32::from(elf::EV_CURRENT) {
        return refuse(format!("corrupt ELF header: ELF version {e_version}"));
    }
    let ehsize = u64::from(header.e_ehsize(endian));
    if ehsize != header_size {
        return refuse(format!(
            "corrupt ELF header: header size {ehsize}, expected {header_size}"
        ));
    }
    if let Some((machine, name)) = HOST_MACHINE {
        let found = header.e_machine(endian);
        if found != machine {
            return refuse(format!(
                "built for another machine (ELF machine {found}), this host is {name} ({machine})"
            ));
        }
    }

    let truncated = |what: String| {
        format!(
            "{what} lies beyond the end of the file ({len} bytes): the file is truncated or corrupt"
        )
    };

    // Section headers first: they are at the end of the file, so a cut anywhere after the
    // first bytes shows here with the clearest message.
    let shoff: u64 = header.e_shoff(endian).into();
    if shoff != 0 {
        let entsize = u64::from(header.e_shentsize(endian));
        let want = std::mem::size_of::<<HostElf as FileHeader>::SectionHeader>() as u64;
        if entsize != want {
            return refuse(format!(
                "corrupt ELF header: section header size {entsize}, expected {want}"
            ));
        }
        if shoff >= len {
            return refuse(truncated(format!(
                "the section header table (at byte {shoff})"
            )));
        }
    }
    let sections = header.section_headers(endian, data).map_err(|e| {
        Refusal::parse(
            truncated(format!("the section header table (at byte {shoff})")),
            e,
        )
    })?;
    if !sections.is_empty() {
        let index = header
            .shstrndx(endian, data)
            .map_err(|e| Refusal::parse(format!("corrupt ELF header: {e}"), e))?;
        match sections.get(index as usize) {
            Some(s) if s.sh_type(endian) == elf::SHT_STRTAB => {}
            _ => {
                return refuse(format!(
                    "corrupt section headers: section {index} (the section names) is not a string table: the file is truncated, zero-filled or corrupt"
                ))
            }
        }
    }
    for (i, s) in sections.iter().enumerate() {
        if let Some((offset, size)) = s.file_range(endian) {
            match offset.checked_add(size) {
                Some(end) if end <= len => {}
                _ => {
                    return refuse(truncated(format!(
                        "section {i} (bytes {offset}..{})",
                        offset.saturating_add(size)
                    )))
                }
            }
        }
    }

    // Program headers: what the dynamic loader maps.
    let phoff: u64 = header.e_phoff(endian).into();
    let phentsize = u64::from(header.e_phentsize(endian));
    let want = std::mem::size_of::<<HostElf as FileHeader>::ProgramHeader>() as u64;
    if phoff == 0 || header.e_phnum(endian) == 0 {
        return refuse("no program headers: not a loadable library");
    }
    if phentsize != want {
        return refuse(format!(
            "corrupt ELF header: program header size {phentsize}, expected {want}"
        ));
    }
    let phnum = header
        .phnum(endian, data)
        .map_err(|e| Refusal::parse(format!("corrupt ELF header: {e}"), e))?;
    let table_end = (phnum as u64)
        .checked_mul(want)
        .and_then(|n| n.checked_add(phoff));
    if table_end.is_none_or(|end| end > len) {
        return refuse(truncated(format!(
            "the program header table ({phnum} entries at byte {phoff})"
        )));
    }
    let program_headers = header.program_headers(endian, data).map_err(|e| {
        Refusal::parse(
            format!("corrupt program header table at byte {phoff} ({e})"),
            e,
        )
    })?;

    let mut loads: Vec<Load> = Vec::new();
    for (i, ph) in program_headers.iter().enumerate() {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let offset: u64 = ph.p_offset(endian).into();
        let filesz: u64 = ph.p_filesz(endian).into();
        let vaddr: u64 = ph.p_vaddr(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        let align: u64 = ph.p_align(endian).into();
        let file_end = offset.checked_add(filesz);
        if file_end.is_none_or(|end| end > len) {
            return refuse(truncated(format!(
                "loadable segment {} (program header {i}, file bytes {offset}..{})",
                loads.len(),
                offset.saturating_add(filesz)
            )));
        }
        if filesz > memsz {
            return refuse(format!(
                "corrupt program header {i}: a loadable segment with {filesz} bytes in the file but only {memsz} in memory"
            ));
        }
        let (Some(file_end_vaddr), Some(mem_end_vaddr)) =
            (vaddr.checked_add(filesz), vaddr.checked_add(memsz))
        else {
            return refuse(format!(
                "corrupt program header {i}: segment address {vaddr:#x} + size overflows"
            ));
        };
        if align > 1 && (!align.is_power_of_two() || offset % align != vaddr % align) {
            return refuse(format!(
                "corrupt program header {i}: offset {offset:#x} and address {vaddr:#x} are not congruent modulo the alignment {align:#x}"
            ));
        }
        if let Some(previous) = loads.last() {
            if vaddr < previous.mem_end_vaddr {
                return refuse(format!(
                    "corrupt program header {i}: loadable segments overlap or are out of order (address {vaddr:#x} is below {:#x})",
                    previous.mem_end_vaddr
                ));
            }
        }
        loads.push(Load {
            vaddr,
            file_end_vaddr,
            mem_end_vaddr,
        });
    }
    if loads.is_empty() {
        return refuse("no loadable segment (PT_LOAD): not a loadable library");
    }

    let dynamic: Vec<_> = program_headers
        .iter()
        .enumerate()
        .filter(|(_, ph)| ph.p_type(endian) == elf::PT_DYNAMIC)
        .collect();
    let [(i, dynamic)] = dynamic[..] else {
        return refuse(format!(
            "{} dynamic segments (PT_DYNAMIC), a shared library has exactly one",
            dynamic.len()
        ));
    };
    let offset: u64 = dynamic.p_offset(endian).into();
    let filesz: u64 = dynamic.p_filesz(endian).into();
    let vaddr: u64 = dynamic.p_vaddr(endian).into();
    if offset.checked_add(filesz).is_none_or(|end| end > len) {
        return refuse(truncated(format!(
            "the dynamic segment (program header {i}, file bytes {offset}..{})",
            offset.saturating_add(filesz)
        )));
    }
    // The loader reads the dynamic section through the mapping, so it must be file-backed
    // bytes of a loadable segment.
    if !in_file_backed(&loads, vaddr, filesz) {
        return refuse(format!(
            "corrupt program header {i}: the dynamic segment (address {vaddr:#x}, {filesz} bytes) is not inside a loadable segment"
        ));
    }
    let entries = dynamic
        .dynamic(endian, data)
        .map_err(|e| Refusal::parse(format!("corrupt dynamic segment ({e})"), e))?
        .unwrap_or(&[]);
    let Some(end) = entries
        .iter()
        .position(|d| tag_of(d, endian) == u64::from(elf::DT_NULL))
    else {
        return refuse(
            "corrupt dynamic segment: no DT_NULL entry ends it within its size".to_string(),
        );
    };
    let entries = &entries[..end];
    let value = |tag: u32| -> Option<u64> {
        entries
            .iter()
            .find(|d| tag_of(d, endian) == u64::from(tag))
            .map(|d| d.d_val(endian).into())
    };
    for &(tag, name, size_tag) in ADDRESS_TAGS {
        let Some(address) = value(tag) else { continue };
        let size = size_tag.and_then(value).unwrap_or(1);
        if !in_memory(&loads, address, size.max(1)) {
            return refuse(format!(
                "corrupt dynamic segment: {name} (address {address:#x}, {size} bytes) is outside the loadable segments"
            ));
        }
    }
    let strsz = value(elf::DT_STRSZ).unwrap_or(0);
    for d in entries {
        let tag = tag_of(d, endian);
        if let Some((_, name)) = STRING_TAGS.iter().find(|(t, _)| u64::from(*t) == tag) {
            let offset: u64 = d.d_val(endian).into();
            if offset >= strsz {
                return refuse(format!(
                    "corrupt dynamic segment: {name} names string offset {offset}, past the {strsz}-byte string table"
                ));
            }
        }
    }
    Ok(())
}

/// The tag of a dynamic entry, widened.
fn tag_of(d: &<HostElf as FileHeader>::Dyn, endian: Endianness) -> u64 {
    d.d_tag(endian).into()
}

/// Whether `address..address + size` lies inside the memory of one loadable segment.
fn in_memory(loads: &[Load], address: u64, size: u64) -> bool {
    let Some(end) = address.checked_add(size) else {
        return false;
    };
    loads
        .iter()
        .any(|l| address >= l.vaddr && end <= l.mem_end_vaddr)
}

/// Whether `address..address + size` lies inside the file-backed part of one loadable segment.
fn in_file_backed(loads: &[Load], address: u64, size: u64) -> bool {
    let Some(end) = address.checked_add(size) else {
        return false;
    };
    loads
        .iter()
        .any(|l| address >= l.vaddr && end <= l.file_end_vaddr)
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    fn check(data: &[u8]) -> Result<(), String> {
        super::check(data).map_err(|r: Refusal| r.detail)
    }

    #[test]
    fn short_and_foreign_files_are_refused_with_a_reason() {
        assert_eq!(
            check(b"").unwrap_err(),
            "the file is empty (0 bytes): truncated, or still being copied?"
        );
        assert_eq!(
            check(b"\x7fEL").unwrap_err(),
            "the file is 3 bytes, too short for an ELF header: truncated?"
        );
        assert_eq!(
            check(b"\x7fELF\x02\x01\x01").unwrap_err(),
            "the file is 7 bytes, too short for an ELF header: truncated?"
        );
        assert_eq!(
            check(b"#!/bin/sh\n").unwrap_err(),
            "not an ELF file (it starts with \"#!/bin/s\", not \"\\x7fELF\")"
        );
        let mut ident = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            check(&ident).unwrap_err(),
            "a 32-bit ELF file, but this host is 64-bit"
        );
        ident[4] = super::HOST_CLASS;
        ident[5] = if cfg!(target_endian = "little") { 2 } else { 1 };
        assert!(check(&ident)
            .unwrap_err()
            .contains("ELF file, but this host is"));
        ident[5] = if cfg!(target_endian = "little") { 1 } else { 2 };
        assert_eq!(
            check(&ident).unwrap_err(),
            format!(
                "the file is 16 bytes, shorter than the {}-byte ELF header: truncated?",
                std::mem::size_of::<super::HostElf>()
            )
        );
    }
}
