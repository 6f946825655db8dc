//! Colours: the screens are drawn with named colours (`red`, `cyan`, the selected
//! row…), and a theme says what each one is. The shipped themes are
//! `assets/themes/dark.toml` (the default) and `assets/themes/light.toml`; the config
//! file picks one (`theme = "light"`) or starts from one and changes colours
//! (`[theme] base = "light"`, `red = "#b00020"`). `NO_COLOR` turns colours off.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};

/// The dark theme, as shipped.
pub const DARK: &str = include_str!("../../assets/themes/dark.toml");
/// The light theme, as shipped.
pub const LIGHT: &str = include_str!("../../assets/themes/light.toml");

/// What the named colours are, and the payload highlighting's syntect theme.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    /// The syntect theme for JSON and XML payloads.
    pub highlight: String,
    colors: Vec<(Color, Color)>,
    selected_fg: Color,
    selected_bg: Color,
}

/// The named colours a theme sets, as the screens use them.
const NAMES: &[(&str, Color)] = &[
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("white", Color::White),
    ("lightblue", Color::LightBlue),
];

/// A theme in the config file: a shipped name, or a base and colours over it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum ThemeSetting {
    /// `"dark"` or `"light"`.
    Name(String),
    /// `base = "light"` (default dark) and `NAME = "COLOUR"` entries.
    Custom(BTreeMap<String, String>),
}

impl Palette {
    /// The shipped theme `name`; the error lists the names.
    pub fn shipped(name: &str) -> Result<Palette, String> {
        let text = match name {
            "dark" => DARK,
            "light" => LIGHT,
            other => return Err(format!("unknown theme '{other}' (themes: dark, light)")),
        };
        let table: BTreeMap<String, String> =
            toml::from_str(text).map_err(|e| format!("theme {name}: {e}"))?;
        Palette::over(Palette::plain(), &table)
    }

    /// The palette of a config file's `theme`; the error names the key or colour.
    pub fn of(setting: &ThemeSetting) -> Result<Palette, String> {
        match setting {
            ThemeSetting::Name(n) => Palette::shipped(n),
            ThemeSetting::Custom(t) => {
                let base = t.get("base").map_or("dark", String::as_str);
                let mut rest = t.clone();
                rest.remove("base");
                Palette::over(Palette::shipped(base)?, &rest)
            }
        }
    }

    /// The shipped dark theme: every named colour as itself.
    pub fn plain() -> Palette {
        Palette {
            highlight: "base16-eighties.dark".into(),
            colors: NAMES.iter().map(|(_, c)| (*c, *c)).collect(),
            selected_fg: Color::White,
            selected_bg: Color::Blue,
        }
    }

    /// `base` with the entries of `table` set.
    fn over(mut base: Palette, table: &BTreeMap<String, String>) -> Result<Palette, String> {
        for (key, value) in table {
            if key == "highlight" {
                base.highlight = value.clone();
                continue;
            }
            let colour = parse_colour(value)?;
            match key.as_str() {
                "selected_fg" => base.selected_fg = colour,
                "selected_bg" => base.selected_bg = colour,
                name => {
                    let (_, named) = NAMES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                        format!("unknown theme key '{name}' (keys: base, highlight, selected_fg, selected_bg, black, red, green, yellow, blue, magenta, cyan, gray, darkgray, white, lightblue)")
                    })?;
                    for pair in &mut base.colors {
                        if pair.0 == *named {
                            pair.1 = colour;
                        }
                    }
                }
            }
        }
        Ok(base)
    }

    fn map(&self, c: Color) -> Color {
        self.colors
            .iter()
            .find(|(from, _)| *from == c)
            .map_or(c, |(_, to)| *to)
    }
}

/// `red`, `darkgray`, `#b00020`, `reset`; the error quotes the value.
fn parse_colour(s: &str) -> Result<Color, String> {
    if let Some(hex) = s.strip_prefix('#')
        && hex.len() == 6
        && let Ok(v) = u32::from_str_radix(hex, 16)
    {
        return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    s.parse::<Color>()
        .map_err(|_| format!("'{s}' is not a colour (a name such as red or darkgray, or #rrggbb)"))
}

/// Styles in a palette's colours, or none of them under `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Theme<'a> {
    /// False when `NO_COLOR` is set.
    pub color: bool,
    /// The colours; None for the shipped dark theme (the named colours as they are).
    pub palette: Option<&'a Palette>,
}

impl<'a> Theme<'a> {
    /// `palette`'s colours, unless the environment says `NO_COLOR`.
    pub fn of(palette: &'a Palette) -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            palette: Some(palette),
        }
    }

    /// `s` in the theme's colours when colours are on, the plain style otherwise.
    pub fn pick(&self, s: Style) -> Style {
        if !self.color {
            return Style::default();
        }
        let Some(p) = self.palette else {
            return s;
        };
        Style {
            fg: s.fg.map(|c| p.map(c)),
            bg: s.bg.map(|c| p.map(c)),
            ..s
        }
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        if !self.color {
            return Style::default().add_modifier(Modifier::REVERSED);
        }
        let (fg, bg) = self.palette.map_or((Color::White, Color::Blue), |p| {
            (p.selected_fg, p.selected_bg)
        });
        Style::default().bg(bg).fg(fg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_themes_parse_and_light_changes_what_a_light_background_hides() {
        let dark = Palette::shipped("dark").unwrap();
        assert_eq!(dark, Palette::plain());
        let light = Palette::shipped("light").unwrap();
        assert_eq!(light.highlight, "InspiredGitHub");
        assert_eq!(light.map(Color::Yellow), Color::Rgb(0x9a, 0x67, 0x00));
        assert_eq!(light.map(Color::White), Color::Black);
        assert_eq!(light.map(Color::Rgb(1, 2, 3)), Color::Rgb(1, 2, 3));
    }

    #[test]
    fn a_custom_theme_starts_from_its_base_and_bad_values_are_quoted() {
        let t: BTreeMap<String, String> = [
            ("base", "light"),
            ("red", "#ff0000"),
            ("selected_bg", "magenta"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = Palette::of(&ThemeSetting::Custom(t)).unwrap();
        assert_eq!(p.map(Color::Red), Color::Rgb(255, 0, 0));
        assert_eq!(
            p.map(Color::Green),
            Color::Rgb(0x1a, 0x7f, 0x37),
            "from light"
        );
        assert_eq!(p.selected_bg, Color::Magenta);
        let bad = |k: &str, v: &str| {
            let t = BTreeMap::from([(k.to_string(), v.to_string())]);
            Palette::of(&ThemeSetting::Custom(t)).unwrap_err()
        };
        assert_eq!(
            bad("red", "rouge"),
            "'rouge' is not a colour (a name such as red or darkgray, or #rrggbb)"
        );
        assert!(bad("purple", "red").starts_with("unknown theme key 'purple'"));
        assert_eq!(
            bad("base", "solarized"),
            "unknown theme 'solarized' (themes: dark, light)"
        );
        assert_eq!(
            Palette::of(&ThemeSetting::Name("sepia".into())).unwrap_err(),
            "unknown theme 'sepia' (themes: dark, light)"
        );
    }
}
